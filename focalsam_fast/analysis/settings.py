"""The settings of ``focalsam analyze`` (torch-free, so the CLI can build its parser at once)."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import AnalysisError

STAGES = ("eigen", "trace", "density", "landscape")
DTYPE_NAMES = ("float32", "float64")
EIGEN_METHOD_NAMES = ("lanczos", "power")  # the keys of eigen.EIGEN_METHODS


@dataclass
class AnalysisSettings:
    """How much work each estimate gets (the CLI flags of ``focalsam analyze``)."""

    top_k: int = 1
    eigen_method: str = "lanczos"
    tol: float = 1e-4
    max_iter: int = 100
    trace_probes: int = 64
    probe_batch: int | None = None
    slq_runs: int = 4
    slq_steps: int = 64
    sigma_rel: float = 0.01
    landscape_points: int = 41
    landscape_2d_points: int = 21
    landscape_span: float = 1.0
    chunk_size: int = 256
    dtype: str = "float32"
    cache_graph: bool = True
    seed: int = 0
    stages: tuple[str, ...] = STAGES

    def check(self) -> None:
        """Raise :class:`AnalysisError` naming the first invalid setting."""
        if self.probe_batch is not None and (
            isinstance(self.probe_batch, bool)
            or not isinstance(self.probe_batch, int)
            or self.probe_batch < 1
        ):
            raise AnalysisError(f"--probe-batch must be an integer >= 1, got {self.probe_batch!r}")
        ints = {
            "top_k": 1,
            "max_iter": 1,
            "trace_probes": 2,
            "slq_runs": 1,
            "slq_steps": 1,
            "landscape_points": 2,
            "landscape_2d_points": 2,
            "chunk_size": 1,
            "seed": 0,
        }
        for name, low in ints.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise AnalysisError(f"--{name.replace('_', '-')} must be an integer >= {low}, got {value!r}")
        for name in ("tol", "sigma_rel", "landscape_span"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0 < value < float("inf"):
                raise AnalysisError(f"--{name.replace('_', '-')} must be a finite number > 0, got {value!r}")
        if self.eigen_method not in EIGEN_METHOD_NAMES:
            raise AnalysisError(
                f"unknown eigen method {self.eigen_method!r}; valid: {', '.join(EIGEN_METHOD_NAMES)}"
            )
        if self.dtype not in DTYPE_NAMES:
            raise AnalysisError(f"unknown dtype {self.dtype!r}; valid: {', '.join(DTYPE_NAMES)}")
        bad = [s for s in self.stages if s not in STAGES]
        if bad or not self.stages:
            raise AnalysisError(f"unknown stage(s) {bad or list(self.stages)}; valid: {', '.join(STAGES)}")
