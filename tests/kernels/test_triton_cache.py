"""The Triton plan and device-scalar caches against CUDA streams and CUDA-graph capture.

Faults covered: evicting a plan freed device tables that a captured CUDA graph still replays, and
tables were uploaded on one stream and read on another without ordering.  On CPU the capture
predicate ``multi_tensor._capturing`` is faked and the stream objects are stand-ins; the ``gpu``
tests run the real capture, eviction and cross-stream use.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator

import pytest
import torch

pytest.importorskip("triton")

from focalsam_fast.kernels import reference as ref
from focalsam_fast.testing import FP32_ATOL, FP32_ELEM_RTOL, FP32_RTOL, tolerances

tk = importlib.import_module("focalsam_fast.kernels.triton")
mt = importlib.import_module("focalsam_fast.kernels.triton.multi_tensor")

SHAPES = [(3, 5), (700,), (2, 3, 3, 3)]


def _rand(device: torch.device | None = None) -> list[torch.Tensor]:
    """Fresh tensors of SHAPES on ``device`` (default: the default device)."""
    return [torch.randn(s, device=device) for s in SHAPES]


@pytest.fixture
def capture(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, bool]]:
    """Fresh caches of 3 entries and a switch for the capture predicate (``capture["on"]``); the
    default device is the one the Triton kernels run on here (CPU in the interpreter)."""
    dev = torch.device("cpu") if tk.INTERPRETED else torch.device("cuda", 0)
    if not tk.is_available(dev)[0]:
        pytest.skip(tk.is_available(dev)[1])
    state = {"on": False}
    monkeypatch.setattr(mt, "_capturing", lambda device: state["on"])
    monkeypatch.setattr(mt, "CACHE_SIZE", 3)
    for name in ("_PLANS", "_LAYOUTS", "_SCALARS"):
        monkeypatch.setattr(mt, name, mt._Cache())
    monkeypatch.setattr(mt, "_GRAPH_SOURCES", [])
    torch.set_default_device(dev)
    try:
        yield state
    finally:
        torch.set_default_device(None)


def test_a_plan_used_during_capture_is_pinned_and_survives_eviction(capture: dict[str, bool]) -> None:
    pinned_lists, other_lists = [_rand()], [_rand()]
    pinned, other = mt.plan(pinned_lists), mt.plan(other_lists)
    capture["on"] = True
    assert mt.plan(pinned_lists) is pinned  # a hit during capture: pinned
    capture["on"] = False
    for _ in range(2 * mt.CACHE_SIZE):  # eviction pressure: new addresses, new plans
        mt.plan([_rand()])
    assert len(mt._PLANS.lru) == mt.CACHE_SIZE and list(mt._PLANS.pinned.values()) == [pinned]
    assert mt.plan(pinned_lists) is pinned  # survived
    assert mt.plan(other_lists) is not other  # evicted, rebuilt
    grads = pinned_lists[0]  # and the pinned plan still computes the right thing
    torch.testing.assert_close(tk.sq_norm(grads), ref.sq_norm(grads), **tolerances(torch.float32))
    assert mt._PLANS.pinned and mt.plan(pinned_lists) is pinned


def test_a_plan_built_during_capture_is_never_found_by_an_eager_call(capture: dict[str, bool]) -> None:
    """Its tables are written by the graph's own copy nodes, so only the capture may use them."""
    eager = [_rand()]
    mt.plan(eager)  # caches the layout of SHAPES
    layout_key = next(iter(mt._LAYOUTS.lru))
    lists = [_rand()]  # same shapes, new addresses: a plan miss, a layout hit
    capture["on"] = True
    first = mt.plan(lists)
    assert mt.plan(lists) is not first  # not cached during capture
    assert layout_key in mt._LAYOUTS.pinned  # the eager layout it reads is pinned
    fresh_layout = mt.plan([[torch.randn(9)]])  # a layout miss during capture: not cached either
    assert len(mt._LAYOUTS.lru) == 0 and len(mt._LAYOUTS.pinned) == 1 and fresh_layout.n_chunks == 1
    capture["on"] = False
    eager_plan = mt.plan(lists)
    assert eager_plan is not first and mt.plan(lists) is eager_plan  # built and cached eagerly
    on_gpu = torch.get_default_device().type == "cuda"
    assert len(mt._GRAPH_SOURCES) == (4 if on_gpu else 0)  # the captured copies' sources, kept


def test_device_scalars_follow_the_capture_rules(capture: dict[str, bool]) -> None:
    dev = torch.get_default_device()
    lr = mt.device_scalar(0.25, torch.float32, dev, "lr")
    capture["on"] = True
    assert mt.device_scalar(0.25, torch.float32, dev, "lr") is lr  # hit: pinned
    during = mt.device_scalar(0.5, torch.float32, dev, "lr")  # miss: filled by the graph, not cached
    assert float(during) == 0.5 and mt.device_scalar(0.5, torch.float32, dev, "lr") is not during
    capture["on"] = False
    for k in range(2 * mt.CACHE_SIZE):
        mt.device_scalar(1.0 + k, torch.float32, dev, "lr")
    assert mt.device_scalar(0.25, torch.float32, dev, "lr") is lr and float(lr) == 0.25
    assert len(mt._SCALARS.lru) == mt.CACHE_SIZE


def test_device_scalar_rejects_tensors_of_several_elements() -> None:
    with pytest.raises(ValueError, match=r"^rho must be a float or a one-element tensor, got shape \(2,\)$"):
        mt.device_scalar(torch.ones(2), torch.float32, torch.device("cpu"), "rho")


class _Stream:
    """Stands in for a ``torch.cuda.Stream``: records the events it is made to wait on."""

    def __init__(self) -> None:
        self.waited: list[object] = []

    def wait_event(self, event: object) -> None:
        self.waited.append(event)


class _DeviceTable:
    """Stands in for a device tensor: records ``record_stream`` calls."""

    def __init__(self) -> None:
        self.recorded: list[_Stream] = []

    def record_stream(self, stream: _Stream) -> None:
        self.recorded.append(stream)


def test_a_table_is_ordered_once_on_each_new_stream() -> None:
    upload_stream, other = _Stream(), _Stream()
    ready = object()
    data = _DeviceTable()
    table = mt._Table(data, torch.zeros(3, dtype=torch.int64), ready, {upload_stream})
    table.order_on(upload_stream)  # the upload's own stream: already ordered
    assert upload_stream.waited == [] and data.recorded == []
    table.order_on(other)
    table.order_on(other)
    assert other.waited == [ready]  # waits for the upload, once
    assert data.recorded == [other]  # and the allocator keeps the table until other's work is done
    assert table.streams == {upload_stream, other}


def test_a_plan_orders_every_table_it_reads() -> None:
    s0, s1, s2 = _Stream(), _Stream(), _Stream()
    layout = mt._Table(_DeviceTable(), torch.zeros(3), "layout uploaded", {s0, s1})
    addrs = mt._Table(_DeviceTable(), torch.zeros(3), "addrs uploaded", {s1})
    pl = mt.Plan(groups=(), n_chunks=0, block=16, tables=(layout, addrs), streams={s1})
    pl.order_on(s2)
    assert s2.waited == ["layout uploaded", "addrs uploaded"]
    assert layout.data.recorded == [s2] and addrs.data.recorded == [s2]
    assert pl.streams == {s1, s2}


# --------------------------------------------------------------------------- GPU-only


def _cuda() -> torch.device:
    dev = torch.device("cuda")
    ok, why = tk.is_available(dev)
    if not ok:
        pytest.skip(why)
    return dev


@pytest.mark.gpu
def test_a_plan_used_on_another_stream_waits_for_its_upload() -> None:
    """The upload is queued behind ~0.2 s of spinning on the current stream; the first use is on a
    side stream, which must wait for it (else the kernel reads an unwritten address table)."""
    dev = _cuda()
    grads = _rand(dev)
    want = ref.sq_norm(grads)
    torch.cuda.synchronize()
    torch.cuda._sleep(400_000_000)
    mt.plan([grads])  # a new plan: uploaded behind the sleep
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        got = tk.sq_norm(grads)
    torch.cuda.synchronize()
    torch.testing.assert_close(got, want, **tolerances(torch.float32))


@pytest.mark.gpu
def test_cuda_graph_replays_after_its_plans_are_pushed_out_of_the_cache() -> None:
    """Warm-up on a side stream, capture one SAM step, evict every unpinned plan and scribble over
    the freed memory, then replay: the result matches the reference on the same inputs."""
    dev = _cuda()
    params, grads = _rand(dev), _rand(dev)
    out, bufs = [torch.empty_like(p) for p in params], [torch.zeros_like(p) for p in params]
    lr = torch.tensor(0.1, device=dev)
    found_inf = torch.zeros(1, device=dev)

    def step() -> None:
        norm = tk.sq_norm(grads).sqrt()
        tk.perturb(params, grads, out, norm, 0.05)
        tk.sgd_step(
            params,
            grads,
            out,
            bufs,
            lr=lr,
            momentum=0.9,
            dampening=0.0,
            weight_decay=1e-4,
            nesterov=False,
            maximize=False,
            first_step=False,
            found_inf=found_inf,
        )

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        step()
        step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()
        late_out = [torch.empty_like(p) for p in params]  # new addresses: a plan built while capturing
        tk.perturb(params, grads, late_out, tk.sq_norm(grads, params).sqrt(), 0.05, adaptive=True)
    pressure = [_rand(dev) for _ in range(2 * mt.CACHE_SIZE)]  # alive: new addresses, new plans
    for grads_k in pressure:  # evict every unpinned plan and scalar
        tk.sq_norm(grads_k)
        mt.device_scalar(torch.rand(()).item(), torch.float32, dev, "lr")
    del pressure
    scribble = [torch.full((1 << 20,), -1, dtype=torch.int64, device=dev) for _ in range(16)]
    for lst in (params, grads, bufs):
        for t in lst:
            t.copy_(torch.randn_like(t))
    expected, bufs_ref = [p.clone() for p in params], [b.clone() for b in bufs]
    out_ref = [torch.empty_like(p) for p in params]
    ref.perturb(expected, grads, out_ref, ref.sq_norm(grads).sqrt(), 0.05)
    ref.sgd_step(
        expected,
        grads,
        out_ref,
        bufs_ref,
        lr=lr,
        momentum=0.9,
        dampening=0.0,
        weight_decay=1e-4,
        nesterov=False,
        maximize=False,
        first_step=False,
    )
    late_ref = [torch.empty_like(p) for p in params]
    ref.perturb(expected, grads, late_ref, ref.sq_norm(grads, expected).sqrt(), 0.05, adaptive=True)
    graph.replay()
    torch.cuda.synchronize()
    del scribble
    for o, w in zip(out, out_ref, strict=True):
        torch.testing.assert_close(o, w, rtol=FP32_ELEM_RTOL, atol=FP32_ATOL)
    atol = FP32_RTOL * max(float(t.abs().max()) for t in expected + grads + out_ref + bufs_ref)
    for p, e in zip(params, expected, strict=True):  # an update cancelling to ~0 keeps its operands' error
        torch.testing.assert_close(p, e, rtol=FP32_RTOL, atol=atol)
    for b, e in zip(bufs, bufs_ref, strict=True):
        torch.testing.assert_close(b, e, rtol=FP32_RTOL, atol=atol)
    for o, w in zip(late_out, late_ref, strict=True):
        torch.testing.assert_close(o, w, rtol=FP32_RTOL, atol=atol)
