"""Class names for CLIP prompts: the official name files, and folder ids refused (issue 12, item 1)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from focalsam_fast.data.class_names import folder_ids, load_class_names
from focalsam_fast.models.clip_classifier import PROMPT
from focalsam_fast.train.builders import clip_class_names
from focalsam_fast.train.config import TrainConfig
from focalsam_fast.train.errors import SetupError

LISTS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "lists"
NEEDS_LISTS = pytest.mark.skipif(
    not (LISTS / "classnames.txt").is_file(),
    reason=f"the official class-name lists are expected in {LISTS} (../shared/data/lists)",
)


@NEEDS_LISTS
def test_imagenet_classnames_give_word_prompts() -> None:
    names = load_class_names(LISTS / "classnames.txt", 1000)
    assert PROMPT.format(names[0]) == "a photo of a tench."
    assert names[2] == "great white shark" and not folder_ids(names)


@NEEDS_LISTS
def test_inat_categories_json_in_id_order() -> None:
    names = load_class_names(LISTS / "categories.json", 8142)
    entries = json.loads((LISTS / "categories.json").read_text())
    by_id = {e["id"]: e["name"] for e in entries}
    assert names == [by_id[i] for i in range(8142)]
    assert PROMPT.format(names[0]) == f"a photo of a {by_id[0]}."


def test_plain_and_wnid_lines_and_errors(tmp_path: Path) -> None:
    plain = tmp_path / "names.txt"
    plain.write_text("tench\n\n goldfish \nn01484850 great white shark\n")
    assert load_class_names(plain, 3) == ["tench", "goldfish", "great white shark"]
    with pytest.raises(ValueError, match=r"has 3 names but the data set has 4 classes"):
        load_class_names(plain, 4)
    bad = tmp_path / "c.json"
    bad.write_text(json.dumps([{"id": 0, "name": "a"}, {"id": 2, "name": "b"}]))
    with pytest.raises(ValueError, match=r"ids must be 0\.\.1"):
        load_class_names(bad, 2)
    with pytest.raises(ValueError, match="cannot read it"):
        load_class_names(tmp_path / "missing.txt", 2)
    assert folder_ids(["n01440764", "12", "tench", "n0144"]) == ["n01440764", "12"]


def _data(names: list[str]) -> SimpleNamespace:
    return SimpleNamespace(class_names=names, num_classes=len(names))


def test_clip_head_refuses_folder_ids_unless_asked(tmp_path: Path) -> None:
    cfg = TrainConfig(model="clip_vit_b16_lift", dataset="imagenet_lt")
    folders = _data(["n01440764", "n01443537", "n01484850"])
    with pytest.raises(
        SetupError,
        match=r"3 of imagenet_lt's 3 class names are folder ids \(n01440764.*"
        r"--class-names",
    ):
        clip_class_names(cfg, folders)
    allowed = TrainConfig(model="clip_vit_b16_lift", dataset="imagenet_lt", allow_folder_names=True)
    assert clip_class_names(allowed, folders) == folders.class_names
    names = tmp_path / "classnames.txt"
    names.write_text("n01440764 tench\nn01443537 goldfish\nn01484850 great white shark\n")
    given = TrainConfig(model="clip_vit_b16_lift", dataset="imagenet_lt", class_names=str(names))
    assert [PROMPT.format(n) for n in clip_class_names(given, folders)] == [
        "a photo of a tench.",
        "a photo of a goldfish.",
        "a photo of a great white shark.",
    ]
    wrong = TrainConfig(model="clip_vit_b16_lift", dataset="imagenet_lt", class_names=str(names))
    with pytest.raises(SetupError, match="has 3 names but the data set has 2 classes"):
        clip_class_names(wrong, _data(["n01440764", "n01443537"]))
    words = _data(["airplane", "cat"])
    assert clip_class_names(TrainConfig(model="clip_vit_b16_lift"), words) == ["airplane", "cat"]


def test_class_name_flags_need_a_clip_model() -> None:
    """Without a text head the flags would do nothing: refused, not ignored."""
    from focalsam_fast.train.config import validate_config

    with pytest.raises(
        ValueError, match="--class-names sets the CLIP text head's prompts, but --model resnet50"
    ):
        validate_config(TrainConfig(model="resnet50", class_names="names.txt"))
    with pytest.raises(ValueError, match="--allow-folder-names"):
        validate_config(TrainConfig(allow_folder_names=True))
    validate_config(TrainConfig(model="clip_vit_b16_lift", class_names="names.txt"))
