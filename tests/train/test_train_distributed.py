"""Training on several processes (issue 11): the order of the data, the gathered evaluation, and
real 2-rank runs of the command (gloo on the CPU, FileStore rendezvous) against one process.

The runs train a digits CNN without BatchNorm (declared here, registered by this file when it runs
as a rank: ``python test_train_distributed.py train ...``), because per-rank batch statistics
differ from one process's by design.  Each run fixture is module-scoped and shared by the tests
that read it.

Tolerance of the 2-rank vs 1-process comparison (``RTOL``/``ATOL``, fp32): the ranks average two
half-batch gradients where one process sums the whole batch, so every gradient differs by fp32
rounding (~1e-7 relative) and 4 SGD-momentum steps carry it into the weights; measured differences
stay below 1e-5 of the weights' scale.  Same world size: bit-identical.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from focalsam_fast.data.sampling import ShardSampler, epoch_permutation
from focalsam_fast.train.distributed import Ranks, env_ranks, merge_shards, per_rank_batch
from focalsam_fast.train.distributed_launch import launch
from focalsam_fast.train.errors import SetupError

SCRIPT = Path(__file__).resolve()
NO_BN = "digits_cnn_nobn"
RUN = ("--model", NO_BN, "--epochs", "2", "--max-steps-per-epoch", "2", "--threads", "1", "--no-progress")
FAIL_AT = "FOCALSAM_TEST_FAIL_AT_STEP"  # rank 1 raises at this global step (1-based)
RTOL, ATOL = 1e-5, 1e-6
TIMINGS = ("seconds", "train_seconds")

pytestmark = pytest.mark.skipif(
    not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
    reason="torch.distributed with gloo is not available in this torch build",
)


# ---------------------------------------------------------------------------------------- order
def test_one_process_order_is_the_shuffling_loaders() -> None:
    """World 1 keeps the order of ``DataLoader(shuffle=True, generator=seeded)``: runs of earlier
    versions (and the README's numbers) keep their trajectories."""
    data = TensorDataset(torch.arange(304))
    for seed in (17, 1_000_020):
        loader = DataLoader(data, batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(seed))
        order = torch.cat([b[0] for b in loader]).tolist()
        assert order == epoch_permutation(304, seed, 0).tolist()
        assert list(ShardSampler(data, num_replicas=1, rank=0, seed=seed - 3).__iter__()) != order
        sampler = ShardSampler(data, num_replicas=1, rank=0, seed=seed - 3)
        sampler.set_epoch(3)
        assert list(sampler) == order


@pytest.mark.parametrize(("n", "world", "per_rank"), [(304, 2, 16), (304, 4, 8), (101, 3, 5)])
def test_ranks_together_take_the_one_process_batches(n: int, world: int, per_rank: int) -> None:
    """Step k of N ranks with batch b each = step k of one process with batch N b (as sets), every
    epoch; the padding (n not a multiple of N) only repeats samples in the last step."""
    data = TensorDataset(torch.arange(n))
    batch = world * per_rank
    for epoch in (0, 5):
        samplers = [ShardSampler(data, num_replicas=world, rank=r, seed=11) for r in range(world)]
        for s in samplers:
            s.set_epoch(epoch)
        shares = [list(s) for s in samplers]
        assert len({len(s) for s in shares}) == 1
        one = epoch_permutation(n, 11, epoch).tolist()
        steps = -(-len(shares[0]) // per_rank)
        for k in range(steps):
            together = sorted(i for s in shares for i in s[k * per_rank : (k + 1) * per_rank])
            expected = one[k * batch : (k + 1) * batch]
            if k < steps - 1 or n % world == 0:
                assert together == sorted(expected)
            else:
                pad = -n % world
                assert together == sorted(expected + one[:pad])


@pytest.mark.parametrize(("n", "world"), [(500, 2), (101, 2), (101, 3), (7, 4)])
def test_merge_shards_restores_data_set_order_without_padding(n: int, world: int) -> None:
    """What each rank predicts (its unshuffled DistributedSampler share, random values) merges back
    into data-set order with the padding dropped."""
    values = torch.randint(0, 1000, (n,))
    data = TensorDataset(torch.arange(n))
    shares = [list(ShardSampler(data, num_replicas=world, rank=r, shuffle=False)) for r in range(world)]
    parts = torch.stack([torch.stack([values[s], -values[s]]) for s in shares])
    merged = merge_shards(parts, n)
    assert torch.equal(merged[0], values) and torch.equal(merged[1], -values)


def test_global_batch_must_divide() -> None:
    assert per_rank_batch(32, 2) == 16
    with pytest.raises(SetupError, match=r"--batch-size 33 is the global batch .* 2 processes .* 32 or 34"):
        per_rank_batch(33, 2)


def test_launcher_environment() -> None:
    assert env_ranks({}) is None
    assert env_ranks({"RANK": "1", "WORLD_SIZE": "2"}) == Ranks(1, 2, 1, 2)
    two_machines = {"RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}
    assert env_ranks(two_machines) == Ranks(3, 8, 1, 2)
    with pytest.raises(SetupError, match="RANK='x' is not an integer"):
        env_ranks({"RANK": "x", "WORLD_SIZE": "2"})
    with pytest.raises(SetupError, match="inconsistent launcher environment"):
        env_ranks({"RANK": "2", "WORLD_SIZE": "2"})


# ---------------------------------------------------------------------------------------- runs
def _rank_command(*argv: str) -> list[str]:
    return [sys.executable, str(SCRIPT), "train", *argv]


def _launch(
    out: Path, *argv: str, nproc: int = 2, env: dict[str, str] | None = None
) -> tuple[int, str, float]:
    """A run of ``nproc`` ranks into ``out`` (exit code, the ranks' output, seconds)."""
    log = out.parent / f"{out.name}.log"
    started = time.monotonic()
    with log.open("wb") as fh:
        code = launch(
            _rank_command(*RUN, "--out", str(out), *argv), nproc, output=fh, env={**os.environ, **(env or {})}
        )
    return code, log.read_text(), time.monotonic() - started


def _one_process(out: Path, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        _rank_command(*RUN, "--out", str(out), *argv), capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module", autouse=True)
def _no_bn_registered() -> object:
    """The test model is known here too (checkpoints name it)."""
    from focalsam_fast.models.registry import MODELS

    MODELS[NO_BN] = no_bn_digits
    yield
    del MODELS[NO_BN]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("distributed")


@pytest.fixture(scope="module")
def two_ranks(runs: Path) -> tuple[Path, str]:
    code, log, _ = _launch(runs / "two")
    assert code == 0, log
    return runs / "two", log


@pytest.fixture(scope="module")
def one_process(runs: Path) -> Path:
    res = _one_process(runs / "one")
    assert res.returncode == 0, res.stderr
    return runs / "one"


@pytest.fixture(scope="module")
def failed(runs: Path) -> tuple[Path, int, str, float]:
    """Rank 1 raises at step 3 (the first of epoch 2): the run stops after epoch 1's checkpoint.
    Two copies of the folder are kept for the resume tests."""
    code, log, seconds = _launch(runs / "failed", env={FAIL_AT: "3"})
    for copy in ("resume2", "resume1"):
        shutil.copytree(runs / "failed", runs / copy)
    return runs / "failed", code, log, seconds


def _ckpt(folder: Path) -> dict:
    from focalsam_fast.train.checkpoint import load_checkpoint

    return load_checkpoint(folder / "last.pt")


def _history(ckpt: dict) -> list[dict]:
    return [{k: v for k, v in h.items() if k not in TIMINGS} for h in ckpt["history"]]


def test_two_ranks_equal_one_process_on_the_global_batch(two_ranks, one_process) -> None:
    a, b = _ckpt(two_ranks[0]), _ckpt(one_process)
    assert a["global_step"] == b["global_step"] == 4
    assert a["distributed"] == {"world_size": 2, "m_sharpness": False}
    worst = 0.0
    for name, w in b["model"].items():
        torch.testing.assert_close(a["model"][name], w, rtol=RTOL, atol=ATOL, msg=name)
        worst = max(worst, float(((a["model"][name] - w).abs() / w.abs().clamp_min(ATOL)).max()))
    print(f"2 ranks vs 1 process, 4 steps: largest relative weight difference {worst:.2e}")
    assert not all(torch.equal(a["model"][k], w) for k, w in b["model"].items())  # rounding differs
    for ha, hb in zip(_history(a), _history(b), strict=True):
        assert ha["train_samples"] == hb["train_samples"] == 64
        assert ha["train_loss"] == pytest.approx(hb["train_loss"], rel=1e-5)


def test_two_rank_evaluation_is_the_one_process_evaluation(two_ranks) -> None:
    """final.json of the 2-rank run (predictions gathered over the ranks) equals one process
    evaluating the checkpoint's weights, to the last digit."""
    from focalsam_fast.train.builders import build_data
    from focalsam_fast.train.checkpoint import checkpoint_config
    from focalsam_fast.train.engine import make_loader
    from focalsam_fast.train.metrics import evaluate

    folder = two_ranks[0]
    ckpt = _ckpt(folder)
    cfg = checkpoint_config(ckpt, folder / "last.pt")
    data = build_data(cfg)
    model = no_bn_digits(data.num_classes)
    model.load_state_dict(ckpt["model"])
    device = torch.device("cpu")
    loader = make_loader(data.test, cfg, False, None, device)
    one = evaluate(model, loader, data.num_classes, data.groups, device)
    final = json.loads((folder / "final.json").read_text())["final"]
    assert final == json.loads(json.dumps(one.to_dict()))
    assert final["samples"] == len(data.test) == 500


def test_only_rank_0_writes_and_reports(two_ranks) -> None:
    folder, log = two_ranks
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [
            ".focalsam.lock",
            "config.json",
            "final.json",
            "final.txt",
            "last.pt",
            "metrics.jsonl",
            "per_class_accuracy.png",
            "training_curves.png",
        ]
    )
    resolved = json.loads((folder / "config.json").read_text())["resolved"]
    assert (resolved["processes"], resolved["per_process_batch"], resolved["m_sharpness"]) == (2, 16, False)
    assert log.count("epoch   1/2") == 1 and log.count("epoch   2/2") == 1
    assert log.count("accuracy %") == 1  # one summary
    assert "x 2 processes (global batch 32, 16 per process)" in log
    assert "Traceback" not in log


def test_one_failing_rank_stops_every_rank(failed) -> None:
    folder, code, log, seconds = failed
    assert code == 2, log
    assert "focalsam: error: rank 1: injected failure at step 3" in log
    assert "Traceback" not in log
    # rank 0 reports what happened to it and how to continue
    assert "the last complete epoch (1/2) is saved in" in log and "--resume --nproc 2" in log
    assert seconds < 240
    ckpt = _ckpt(folder)
    assert ckpt["epoch"] == 1 and ckpt["global_step"] == 2
    assert not [p for p in folder.iterdir() if p.suffix == ".tmp"]


def test_resumed_two_rank_run_continues_exactly(two_ranks, failed, runs: Path) -> None:
    code, log, _ = _launch(runs / "resume2", "--resume")
    assert code == 0, log
    assert "resuming" in log and "after epoch 1/2" in log
    a, b = _ckpt(two_ranks[0]), _ckpt(runs / "resume2")
    for name, w in a["model"].items():
        assert torch.equal(b["model"][name], w), name
    momentum = b["optimizer"]["base_optimizer"]["state"]
    for p, st in a["optimizer"]["base_optimizer"]["state"].items():
        assert torch.equal(momentum[p]["momentum_buffer"], st["momentum_buffer"])
    assert _history(a) == _history(b)


def test_two_rank_checkpoint_resumes_on_one_process(two_ranks, failed, runs: Path) -> None:
    res = _one_process(runs / "resume1", "--resume")
    assert res.returncode == 0, res.stderr
    a, b = _ckpt(two_ranks[0]), _ckpt(runs / "resume1")
    assert b["global_step"] == 4 and b["distributed"]["world_size"] == 1
    for name, w in a["model"].items():
        torch.testing.assert_close(b["model"][name], w, rtol=RTOL, atol=ATOL, msg=name)


def test_one_process_checkpoint_resumes_on_two_ranks(one_process, runs: Path) -> None:
    """A finished 1-process run resumed on 2 ranks has nothing left to train: the ranks load its
    checkpoint, evaluate it gathered, and report exactly the 1-process metrics."""
    shutil.copytree(one_process, runs / "one_on_two")
    code, log, _ = _launch(runs / "one_on_two", "--resume")
    assert code == 0, log
    final = json.loads((runs / "one_on_two" / "final.json").read_text())
    assert final["final"] == json.loads((one_process / "final.json").read_text())["final"]
    assert _ckpt(runs / "one_on_two")["distributed"]["world_size"] == 1  # nothing trained, nothing saved


# ---------------------------------------------------------------------------------------- the ranks
def no_bn_digits(num_classes: int = 10, **options: object) -> torch.nn.Module:
    """The digits CNN with its BatchNorm layers taken out (samples then do not interact)."""
    from focalsam_fast.models import DigitsCNN

    model = DigitsCNN(num_classes, **options)
    for i, layer in enumerate(model.body):
        if isinstance(layer, torch.nn.BatchNorm2d):
            model.body[i] = torch.nn.Identity()
    return model


def _rank_main(argv: list[str]) -> int:
    """A rank of the runs above: the focalsam command with :func:`no_bn_digits` registered, and
    with ``$FOCALSAM_TEST_FAIL_AT_STEP`` rank 1 raising at that step."""
    from focalsam_fast.cli.main import main
    from focalsam_fast.models.registry import MODELS
    from focalsam_fast.train.engine import Trainer
    from focalsam_fast.train.errors import DivergedError

    MODELS[NO_BN] = no_bn_digits
    fail_at = os.environ.get(FAIL_AT)
    if fail_at is not None and os.environ.get("RANK") == "1":
        step = Trainer.train_step

        def failing(self, x, y, epoch):
            if self.global_step + 1 == int(fail_at):
                raise DivergedError(f"injected failure at step {fail_at}")
            return step(self, x, y, epoch)

        Trainer.train_step = failing
    return main(argv)


if __name__ == "__main__":
    raise SystemExit(_rank_main(sys.argv[1:]))


def test_ccsam_two_ranks_equal_one_process(runs: Path) -> None:
    """CC-SAM's closed form on 2 ranks (the optimizer gathers the batch's features, logit gradients
    and labels; the closure runs the unwrapped model) equals one process on the global batch."""
    code, log, _ = _launch(runs / "cc-two", "--method", "ccsam")
    assert code == 0, log
    res = _one_process(runs / "cc-one", "--method", "ccsam")
    assert res.returncode == 0, res.stderr
    a, b = _ckpt(runs / "cc-two"), _ckpt(runs / "cc-one")
    assert a["global_step"] == b["global_step"] == 4
    for name, w in b["model"].items():
        torch.testing.assert_close(a["model"][name], w, rtol=RTOL, atol=ATOL, msg=name)
    assert not all(torch.equal(a["model"][k], w) for k, w in b["model"].items())  # rounding differs
