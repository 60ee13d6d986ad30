"""The epoch loop: build everything from a :class:`TrainConfig`, train with per-epoch schedules,
evaluate, log, checkpoint atomically with a digest, resume bit-identically (CPU).  A run owns its
output folder (:class:`~focalsam_fast.train.runfolder.RunFolder`) from construction to the end of
:meth:`Trainer.run`.

On N processes (:mod:`~focalsam_fast.train.distributed`) every rank runs this loop on its share of
each global batch with the model in DistributedDataParallel; rank 0 alone holds the folder, logs,
shows progress and writes files; evaluation is gathered over the ranks (the same metrics as one
process); a checkpoint written by any number of ranks resumes on any number."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Sampler

from ..data import LongTailedData
from ..data.sampling import ShardSampler
from ..kernels import ImplUnavailableError
from . import plots
from .builders import build_criterion, build_data, build_run_model, check_runtime, preflight
from .checkpoint import (
    CHECKPOINT_NAME,
    check_compatible,
    check_same_settings,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    seed_everything,
    set_rng_state,
)
from .config import TrainConfig, is_clip, validate_config
from .distributed import (
    DistRun,
    PeerError,
    is_comm_error,
    one_line,
    per_rank_batch,
    rank_device,
    step_forward,
)
from .errors import CheckpointError, DivergedError, SetupError
from .files import atomic_write_text
from .methods import build_optimizer, ccsam_split, method_details
from .metrics import EvalResult, autocast_for, group_table, per_class_table, predict, summarize
from .precision import autocast_mode, precision_record, weight_dtype
from .progress import DEFAULT_EVERY_S, EpochProgress, fmt_duration, progress_mode
from .runfolder import RunFolder
from .schedules import CosineLR, apply_drw, build_rho_scheduler
from .subset import short_run_notes
from .threads import choose_threads

Log = Callable[[str], None]


@dataclass
class RunResult:
    """What a finished (or step-limited) run hands back."""

    config: TrainConfig
    out_dir: Path
    final: EvalResult
    history: list[dict[str, Any]]
    class_counts: list[int]
    class_names: list[str]
    groups: dict[str, list[int]]
    seconds: float
    details: dict[str, float | str] = field(default_factory=dict)
    train_size: int = 0
    notes: list[str] = field(default_factory=list)


def sampler_seed(seed: int) -> int:
    """Base seed of the data-loader shuffling; epoch ``e`` shuffles with ``sampler_seed + e``."""
    return 1_000_003 * seed + 17


def make_loader(
    dataset: Any,
    cfg: TrainConfig,
    train: bool,
    generator: torch.Generator | None,
    device: torch.device,
    sampler: Sampler | None = None,
    batch_size: int | None = None,
) -> DataLoader:
    """Training loader (shuffled with ``generator``, which also seeds the workers) or test loader;
    a ``sampler`` (a rank's share) replaces the shuffling, ``batch_size`` the configured one."""
    return DataLoader(
        dataset,
        batch_size=batch_size or cfg.batch_size,
        shuffle=train and sampler is None,
        sampler=sampler,
        generator=generator,
        num_workers=cfg.workers,
        pin_memory=device.type == "cuda",
        drop_last=False,
    )


def set_threads(cfg: TrainConfig, device: torch.device, processes: int = 1) -> int:
    """Apply ``cfg.threads`` or the default of :mod:`~focalsam_fast.train.threads` (physical cores
    this process may use, shared by the ``processes`` ranks of this machine; one for the digits CNN
    on the CPU); returns the number set."""
    threads = (
        cfg.threads
        if cfg.threads is not None
        else max(1, choose_threads(None, cfg.model, device.type) // processes)
    )
    torch.set_num_threads(threads)
    return threads


class Trainer:
    """One training run of ``cfg`` writing into ``out_dir`` (``None``: a new uniquely named folder
    ``runs/<dataset>-<method>-<time>-<suffix>``).

    ``progress``: see :mod:`~focalsam_fast.train.progress` (``None``: a bar on a terminal, else a
    line every ``progress_every_s`` seconds inside an epoch); ``log`` receives the epoch lines.

    Construction checks the settings, the device and the paths, claims the output folder (an OS
    lock held until :meth:`run` ends or :meth:`close`), then builds data, model, loss, optimizer
    and schedules (and, with ``resume``, loads and checks the checkpoint), so that every setup
    error surfaces as a :class:`~focalsam_fast.train.errors.RunError` before any training.

    ``dist``: this rank of a multi-process run (default: one process).  Only rank 0 claims the
    folder, logs and shows progress; the ranks agree on the set-up's outcome (a failure on one
    rank stops all of them here) and then wrap the model in DistributedDataParallel (:attr:`net`).
    """

    def __init__(
        self,
        cfg: TrainConfig,
        out_dir: str | Path | None,
        resume: str | Path | None = None,
        log: Log = print,
        progress: bool | str | None = None,
        data: LongTailedData | None = None,
        progress_every_s: float = DEFAULT_EVERY_S,
        dist: DistRun | None = None,
    ) -> None:
        self.dist = dist if dist is not None else DistRun()
        try:
            validate_config(cfg)
            self.progress = progress_mode(progress) if self.dist.main else "off"
        except ValueError as exc:
            raise SetupError(str(exc)) from exc
        self.cfg, self.progress_every_s = cfg, progress_every_s
        self.log: Log = log if self.dist.main else _silent
        self.folder: RunFolder | None = None
        error: BaseException | None = None
        try:
            self.rank_batch = check_distributed(cfg, self.dist)
            self.device = rank_device(check_runtime(cfg), self.dist.ranks)
            self.threads = set_threads(cfg, self.device, self.dist.ranks.local_world)
            preflight(cfg)
            if self.dist.main:
                self.folder = (
                    RunFolder.claim_new(f"{cfg.dataset}-{cfg.method}")
                    if out_dir is None
                    else RunFolder.claim(out_dir, resume_from=resume)
                )
            self._build(resume, data)
        except BaseException as exc:  # every rank learns the outcome before it raises
            error = exc
        try:
            self.out_dir = self.dist.agree(error, None if self.folder is None else self.folder.path)
            self.net = self.dist.wrap(self.model, self.device)
        except BaseException:
            if self.folder is not None:
                self.folder.discard()
            raise
        self.short_run = short_run_notes(cfg, self.data.train)
        if self.folder is not None and self.folder.removed_temp:
            log(
                f"removed {len(self.folder.removed_temp)} temporary file(s) of an interrupted save "
                f"from {self.out_dir}"
            )

    def _build(self, resume: str | Path | None, data: LongTailedData | None) -> None:
        cfg = self.cfg
        ckpt = None
        if resume is not None:
            ckpt = load_checkpoint(resume)
            check_same_settings(ckpt, resume, cfg.to_dict())
        self.data = data if data is not None else build_data(cfg)
        if ckpt is not None:
            check_compatible(ckpt, resume, cfg.model, self.data.num_classes, self.data.class_counts)
        seed_everything(cfg.seed)
        self.model = build_run_model(cfg, self.data).to(self.device)
        self.criterion = build_criterion(cfg, self.data).to(self.device)
        # CC-SAM's closure returns the features below the perturbed layers (split once, not per step)
        self.ccsam_features = (
            ccsam_split(self.model, cfg.ccsam_perturb).features if cfg.method == "ccsam" else None
        )
        try:
            self.optimizer = build_optimizer(cfg, self.model, self.data, self.criterion)
        except ImplUnavailableError as exc:
            raise SetupError(str(exc)) from exc
        self.lr_sched = CosineLR(self.optimizer, cfg.epochs)
        self.rho_sched = build_rho_scheduler(self.optimizer, cfg)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=autocast_mode(cfg) == "fp16")
        self.start_epoch, self.global_step = 0, 0
        self.history: list[dict[str, Any]] = []
        self.seed_base = sampler_seed(cfg.seed)
        if ckpt is not None:
            self._load_state(ckpt, resume)

    def close(self) -> None:
        """Give up the output folder (done by :meth:`run` when it ends)."""
        if self.folder is not None:
            self.folder.release()

    # ------------------------------------------------------------------------------ state
    def _load_state(self, ckpt: dict[str, Any], path: str | Path) -> None:
        saved = bool(ckpt.get("distributed", {}).get("m_sharpness", False))
        if saved != self.dist.m_sharpness:
            was = "with" if saved else "without"
            raise CheckpointError(
                f"checkpoint {path} was trained {was} --m-sharpness; a resumed run "
                f"keeps its perturbation (resume {was} it, or start a new run with "
                "another --out)"
            )
        try:
            self.model.load_state_dict(ckpt["model"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
        except (RuntimeError, KeyError, ValueError) as exc:
            raise CheckpointError(
                f"checkpoint {path} does not fit this model/optimizer ({cfg_summary(self.cfg)}): {exc}"
            ) from exc
        self.lr_sched.load_state_dict(ckpt["lr_scheduler"])
        if self.rho_sched is not None and ckpt.get("rho_scheduler") is not None:
            self.rho_sched.load_state_dict(ckpt["rho_scheduler"])
        self.scaler.load_state_dict(ckpt["grad_scaler"])
        self.start_epoch, self.global_step = int(ckpt["epoch"]), int(ckpt["global_step"])
        self.seed_base = int(ckpt["sampler_seed"])
        self.history = list(ckpt["history"])
        set_rng_state(ckpt["rng"])

    def state(self, epoch: int) -> dict[str, Any]:
        """Everything needed to continue after ``epoch`` completed epochs."""
        return {
            "epoch": epoch,
            "global_step": self.global_step,
            "config": self.cfg.to_dict(),
            "model_name": self.cfg.model,
            "num_classes": self.data.num_classes,
            "class_counts": list(self.data.class_counts),
            "class_names": list(self.data.class_names),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "lr_scheduler": self.lr_sched.state_dict(),
            "rho_scheduler": None if self.rho_sched is None else self.rho_sched.state_dict(),
            "grad_scaler": self.scaler.state_dict(),
            "sampler_seed": self.seed_base,
            "rng": rng_state(),
            "history": self.history,
            "distributed": {"world_size": self.dist.world, "m_sharpness": self.dist.m_sharpness},
        }

    @property
    def checkpoint_path(self) -> Path:
        """Where the latest complete epoch is saved."""
        return self.out_dir / CHECKPOINT_NAME

    # ------------------------------------------------------------------------------ training
    def closure(self, x: Tensor, y: Tensor) -> Callable[[], Any]:
        """The step closure for batch ``(x, y)`` under the run's autocast: per-sample losses and
        logits; the logits alone for Focal-SAM (its optimizer holds the loss); the backbone
        features for CC-SAM (its optimizer applies the head).  The forward runs through
        :attr:`net` (DistributedDataParallel on several ranks: a forward arms its gradient
        all-reduce); with ``--m-sharpness`` the step's first forward, the one whose gradient sets
        eps, runs under ``no_sync`` (each rank's own eps)."""
        criterion, amp = self.criterion, autocast_mode(self.cfg)
        if self.cfg.method == "ccsam":  # features in the head's dtype (float16 under --prec fp16)
            dtype, features_of = weight_dtype(self.cfg), self.ccsam_features

            def features() -> Tensor:
                with autocast_for(self.device, amp):
                    return features_of(x).to(dtype)

            return features

        net = step_forward(self.net, self.dist.m_sharpness)

        def forward() -> Tensor:
            with autocast_for(self.device, amp):
                return net(x)

        if self.cfg.method == "focalsam":  # the optimizer applies the loss itself (fused kernel)

            def logits() -> Tensor:
                return forward().float()

            return logits

        def losses() -> tuple[Tensor, Tensor]:
            logits = forward()
            return criterion(logits.float(), y), logits

        return losses

    def epoch_steps(self, loader_len: int) -> int:
        """Steps the next epoch takes: the loader's batches, capped by ``max_steps_per_epoch`` and
        by what is left of ``max_steps``."""
        steps = loader_len
        if self.cfg.max_steps_per_epoch is not None:
            steps = min(steps, self.cfg.max_steps_per_epoch)
        if self.cfg.max_steps is not None:
            steps = min(steps, self.cfg.max_steps - self.global_step)
        return max(steps, 0)

    def train_epoch(self, epoch: int, epoch_estimate: float | None = None) -> dict[str, float]:
        """One pass over the training set (or ``max_steps_per_epoch`` steps, or until
        ``max_steps``); mean loss and accuracy.  ``epoch_estimate``: seconds a full epoch takes,
        for the ETA of the progress lines."""
        cfg = self.cfg
        if cfg.drw:
            apply_drw(self.criterion, self.data.class_counts, epoch, cfg.epochs)
        sampler = ShardSampler(
            self.data.train,
            num_replicas=self.dist.world,
            rank=self.dist.rank,
            shuffle=True,
            seed=self.seed_base,
        )
        sampler.set_epoch(epoch)
        gen = torch.Generator().manual_seed(self.seed_base + epoch)  # the workers' seeds
        loader = make_loader(self.data.train, cfg, True, gen, self.device, sampler, self.rank_batch)
        steps = self.epoch_steps(len(loader))
        self.model.train()
        total_loss, correct, seen = 0.0, 0, 0
        started = time.perf_counter()
        bar = EpochProgress(
            epoch + 1,
            cfg.epochs,
            steps,
            self.progress,
            self.log,
            self.progress_every_s,
            later_epochs=cfg.epochs - epoch - 1,
            epoch_estimate=epoch_estimate,
        )
        try:
            for x, y in loader:
                x = x.to(self.device, non_blocking=True)
                y = y.to(self.device, non_blocking=True)
                loss, logits = self.train_step(x, y, epoch)
                total_loss += loss * len(y)
                if logits is not None:
                    correct += int((logits.argmax(1) == y).sum())
                seen += len(y)
                bar.update(len(y) * self.dist.world, loss, self.global_step)
                if bar.done >= steps:
                    break
        finally:
            bar.close()
        total_loss, correct, seen = self.dist.sum([total_loss, correct, seen], self.device)
        return {
            "train_loss": total_loss / max(seen, 1),
            "train_acc": correct / max(seen, 1),
            "train_samples": int(seen),
            "train_seconds": time.perf_counter() - started,
        }

    def train_step(self, x: Tensor, y: Tensor, epoch: int) -> tuple[float, Tensor | None]:
        """One optimizer step on the batch ``(x, y)`` (on the run's device): its mean loss and the
        logits (``None`` where the method does not return them)."""
        where = f"epoch {epoch + 1}, step {self.global_step + 1}"
        try:
            out = self.optimizer.step(self.closure(x, y), targets=y, grad_scaler=self.scaler)
        except FloatingPointError as exc:  # the SAM optimizers check their losses and gradients
            raise DivergedError(
                f"training diverged at {where}: {exc}; start a new run with a lower --lr or --rho"
            ) from exc
        self.global_step += 1
        loss = float(out.loss)
        if not math.isfinite(loss):
            raise DivergedError(
                f"training loss is {loss} at {where}; start a new run with a lower --lr or --rho"
            )
        return loss, out.logits

    @property
    def max_steps_reached(self) -> bool:
        """Whether ``--max-steps`` has been used up."""
        return self.cfg.max_steps is not None and self.global_step >= self.cfg.max_steps

    def evaluate(self) -> EvalResult:
        """Accuracy on the test set (overall, head/medium/tail, per class) of rank 0's model: each
        rank predicts its share, the predictions are gathered in data-set order (the sampler's
        padding dropped), so the metrics are those of one process."""
        self.dist.sync_buffers(self.model)
        test = self.data.test
        sampler = (
            None
            if not self.dist.active
            else ShardSampler(test, num_replicas=self.dist.world, rank=self.dist.rank, shuffle=False)
        )
        loader = make_loader(test, self.cfg, False, None, self.device, sampler)
        preds, targets = predict(
            self.model, loader, self.device, autocast_mode(self.cfg), self.progress == "bar"
        )
        preds, targets = self.dist.gather_predictions(preds, targets, len(test), self.device)
        return summarize(preds, targets, self.data.num_classes, self.data.groups)

    def write_config(self) -> None:
        """``config.json``: the resolved configuration plus derived settings (rank 0)."""
        info = {
            **self.cfg.to_dict(),
            "resolved": {
                "num_classes": self.data.num_classes,
                "class_counts": list(self.data.class_counts),
                "groups": self.data.groups,
                "group_thresholds": self.data.thresholds.to_dict(),
                "precision": precision_record(self.cfg),
                "method_details": method_details(self.cfg, self.data),
                "impl": getattr(self.optimizer, "impl", "torch.optim.SGD"),
                "device": str(self.device),
                "threads": self.threads,
                "processes": self.dist.world,
                "per_process_batch": self.rank_batch,
                "m_sharpness": self.dist.m_sharpness,
                "train_samples": len(self.data.train),
                "short_run": self.short_run,
            },
        }
        atomic_write_text(json.dumps(info, indent=2) + "\n", self.out_dir / "config.json")

    def run(self) -> RunResult:
        """Train from ``start_epoch`` to the end (or ``max_steps``), then write the final table
        and plots, and release the output folder.  A KeyboardInterrupt propagates; the last
        complete checkpoint stays intact."""
        try:
            return self._run()
        except RuntimeError as exc:
            if self.dist.active and is_comm_error(exc):
                raise PeerError(
                    f"rank {self.dist.rank} lost contact with the other ranks (one of them "
                    f"probably failed: see its error): {one_line(exc)}"
                ) from exc
            raise
        finally:
            self.close()

    def _write_metrics(self) -> None:
        """``metrics.jsonl``: one line per completed epoch, rewritten whole (atomically) each epoch,
        so an interrupted write never leaves a partial line."""
        atomic_write_text("".join(json.dumps(h) + "\n" for h in self.history), self.out_dir / "metrics.jsonl")

    def _run(self) -> RunResult:
        cfg, main = self.cfg, self.dist.main
        if main:
            self.write_config()
            self._write_metrics()  # a resumed run drops the lines of epochs after its checkpoint
        result = None
        session: list[float] = []  # seconds of the epochs run by this process
        for epoch in range(self.start_epoch, cfg.epochs):
            if self.max_steps_reached:
                break
            t0 = time.perf_counter()
            lr = self.lr_sched.get_last_lr()[0]
            rho = None if self.rho_sched is None else self.rho_sched.get_last_rho()[0]
            train = self.train_epoch(epoch, sum(session) / len(session) if session else None)
            result = self.evaluate()
            record = {
                "epoch": epoch + 1,
                "lr": lr,
                "rho": rho,
                **train,
                "test_overall": result.overall,
                "test_head": result.head,
                "test_medium": result.medium,
                "test_tail": result.tail,
                "seconds": time.perf_counter() - t0,
                "global_step": self.global_step,
            }
            record = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in record.items()}
            self.history.append(record)
            self.lr_sched.step()
            if self.rho_sched is not None:
                self.rho_sched.step()
            if main:
                save_checkpoint(self.state(epoch + 1), self.checkpoint_path)
                self._write_metrics()
            session.append(record["seconds"])
            left = 0 if self.max_steps_reached else cfg.epochs - epoch - 1
            self.log(epoch_line(record, cfg.epochs, sum(session) / len(session) * left))
        if result is None:  # nothing left to train (resumed a finished run)
            result = self.evaluate()
        return self.finish(result)

    def finish(self, result: EvalResult) -> RunResult:
        """Write ``final.json``, ``final.txt`` and the plots (rank 0).  The training time is the sum
        of the recorded epoch times, so it counts every session of a resumed run (and resuming a
        finished run keeps it)."""
        data = self.data
        seconds = sum(h["seconds"] for h in self.history)
        run = RunResult(
            self.cfg,
            self.out_dir,
            result,
            self.history,
            list(data.class_counts),
            list(data.class_names),
            data.groups,
            seconds,
            method_details(self.cfg, data),
            len(data.train),
            self.short_run,
        )
        if self.dist.main:
            write_final(run)
        return run


def _silent(msg: str) -> None:
    """The log of the ranks other than 0."""


def check_distributed(cfg: TrainConfig, dist: DistRun) -> int:
    """The per-process batch of ``cfg`` on ``dist``'s ranks; a one-line :class:`SetupError` for a
    global batch that does not divide, CC-SAM outside its distributed closed form, or
    ``--m-sharpness`` where it means nothing (one process, SGD, CC-SAM)."""
    if dist.m_sharpness and not dist.active:
        raise SetupError(
            "--m-sharpness perturbs each process with its own gradient; it needs several "
            "processes (--nproc N >= 2 or torchrun)"
        )
    if dist.m_sharpness and cfg.method == "sgd":
        raise SetupError("--m-sharpness sets how the SAM methods perturb; --method sgd has no perturbation")
    if dist.m_sharpness and cfg.method == "ccsam":
        raise SetupError(
            "--m-sharpness sets how SAM, ImbSAM and Focal-SAM perturb; --method ccsam's per-class "
            "perturbations always use the global batch (drop --m-sharpness)"
        )
    if (
        dist.active
        and cfg.method == "ccsam"
        and (cfg.ccsam_perturb != "head" or cfg.impl == "reference" or is_clip(cfg.model))
    ):
        raise SetupError(
            "--method ccsam runs on several processes in its closed form only (--ccsam-perturb head, "
            "an nn.Linear head: not a CLIP model, a fused --impl); got "
            f"--ccsam-perturb {cfg.ccsam_perturb} --impl {cfg.impl} --model {cfg.model}: use one process"
        )
    return per_rank_batch(cfg.batch_size, dist.world)


def cfg_summary(cfg: TrainConfig) -> str:
    """``method/loss on dataset with model`` in one phrase."""
    return f"{cfg.method}/{cfg.loss}{'+drw' if cfg.drw else ''} on {cfg.dataset} with {cfg.model}"


def epoch_line(record: dict[str, Any], epochs: int, eta: float | None = None) -> str:
    """One log line per epoch: step count, loss, test accuracy, time, training throughput and the
    run's ETA (``eta`` seconds; ``None``: not shown)."""

    def pct(v: float | None) -> str:
        return "n/a" if v is None else f"{100 * v:.1f}"

    rho = "" if record["rho"] is None else f" rho {record['rho']:.3g}"
    train_s = record.get("train_seconds")
    rate = f"  {record['train_samples'] / train_s:.1f} img/s" if train_s else ""
    return (
        f"epoch {record['epoch']:>3}/{epochs}  step {record['global_step']}  lr {record['lr']:.4g}{rho}  "
        f"loss {record['train_loss']:.4f}  test {pct(record['test_overall'])}% "
        f"(head {pct(record['test_head'])} / med {pct(record['test_medium'])} / "
        f"tail {pct(record['test_tail'])})  {record['seconds']:.1f}s{rate}"
        + ("" if eta is None else f"  ETA {fmt_duration(eta)}")
    )


def best_epoch(history: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The epoch with the highest overall test accuracy (the first on a tie) and its group
    accuracies, from the per-epoch records; None before any evaluated epoch."""
    evaluated = [h for h in history if h.get("test_overall") is not None]
    if not evaluated:
        return None
    best = max(evaluated, key=lambda h: h["test_overall"])
    return {k: best[k] for k in ("epoch", "test_overall", "test_head", "test_medium", "test_tail")}


def write_final(run: RunResult) -> None:
    """``final.json`` / ``final.txt`` (overall, groups, per class) and the PNG plots."""
    out = run.out_dir
    payload = {
        "method": run.config.method,
        "config": run.config.to_dict(),
        "final": run.final.to_dict(),
        "class_counts": run.class_counts,
        "class_names": run.class_names,
        "groups": run.groups,
        "epochs_done": len(run.history),
        "train_seconds": run.seconds,
        "train_samples": run.train_size,
        "short_run": run.notes,
        "best_epoch": best_epoch(run.history),
    }
    atomic_write_text(json.dumps(payload, indent=2) + "\n", out / "final.json")
    best = payload["best_epoch"]
    best_line = (
        ""
        if best is None
        else (
            f"\nbest test epoch {best['epoch']}: overall {100 * best['test_overall']:.1f}% (the table above "
            "is the last epoch; the official scripts also log this best epoch, 'Best Prec@1')\n"
        )
    )
    text = (
        group_table({run.config.method: run.final}, run.groups)
        + "\n\n"
        + per_class_table(run.final, run.class_counts, run.class_names, run.groups)
        + "\n"
        + best_line
    )
    atomic_write_text(text, out / "final.txt")
    plots.per_class_plot(
        {run.config.method: run.final.per_class}, run.class_counts, run.groups, out / "per_class_accuracy.png"
    )
    if run.history:
        plots.training_curves(run.history, out / "training_curves.png")
