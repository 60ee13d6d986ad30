"""``focalsam presets`` marks the values that rest on assumptions, with the reason, and lists the
assumptions that other flags bring in."""

from __future__ import annotations

from focalsam_fast.train.assumptions import ASSUMPTIONS
from focalsam_fast.train.config import PRESETS


def _blocks(out: str) -> dict[str, list[str]]:
    """Preset name -> its lines (description, values, assumption lines)."""
    blocks: dict[str, list[str]] = {}
    current = None
    for line in out.splitlines():
        name = line.split(" ", 1)[0]
        if name in PRESETS:
            current = name
        elif not line.startswith(" "):
            current = None
        if current is not None:
            blocks.setdefault(current, []).append(line)
    return blocks


def test_cli_presets_mark_assumed_values(run_cli) -> None:
    res = run_cli("presets")
    assert res.code == 0 and res.err == ""
    blocks = _blocks(res.out)
    assert set(blocks) == set(PRESETS)
    fft = next(a for a in ASSUMPTIONS if a.key == "fft")
    for name, lines in blocks.items():
        text = "\n".join(lines)
        if name.endswith("_clip_fft"):
            for field in ("gamma", "lam", "rho", "prec"):
                assert f"{field}={PRESETS[name].values[field]}*" in text, (name, field)
            assert "lr=0.001," in text  # the paper's FFT learning rate is not an assumption
            assert f"* assumed [fft]: {fft.reason}" in text
        else:
            assert "*" not in text, name
    assert "prec=fp16" in "\n".join(blocks["cifar10_clip_lift"])
    assert "prec=fp32" in "\n".join(blocks["inat2018_clip_lift"])


def test_cli_presets_list_every_assumption_with_its_condition(run_cli) -> None:
    out = run_cli("presets").out
    assert (
        "* marks a value that rests on an assumption, not on the released scripts (docs/fidelity.md)" in out
    )
    for a in ASSUMPTIONS:
        assert f"  [{a.key}] {', '.join(a.fields)} with {a.when}: {a.reason}" in out
