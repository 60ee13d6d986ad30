"""Multi-tensor launch plans: one Triton launch over every tensor of a parameter list.

Each tensor is cut into chunks of ``block`` elements.  A plan holds, per dtype group, two device
tables:

* ``layout`` (int64 ``[n_chunks, 3]``): tensor index within the group, first element and element
  count of every chunk.  It depends only on shapes/strides/dtypes, so it is built once per model.
* ``addrs`` (int64 ``[n_lists, n_tensors]``): the data address of every tensor of every list.  It
  depends on the storages; gradients re-allocated by each backward usually land on the same
  caching-allocator blocks, so it is cached too (LRU keyed on the addresses) and, when new,
  uploaded with a non-blocking copy from pinned memory (no host sync).

Streams and CUDA graphs (see :class:`_Table` and :class:`_Cache`):

* a table is copied on the stream current at upload; a plan first used on another stream makes
  that stream wait for the copy (an event) and records the stream on the table
  (``record_stream``), so evicting the plan never frees memory a queued kernel still reads;
* during CUDA-graph capture a cache hit is *pinned* (never evicted: the graph replays kernels that
  read its tables), and a miss is built for this call only (its tables are filled by the graph's
  own copy nodes, so they hold data only in replays), with its host sources kept alive for the
  life of the process (the graph's copy nodes read them at every replay).  Uploads made before a
  capture must be complete when it begins (``torch.cuda.graph`` synchronises the device on entry;
  a capturing stream may not wait on an event recorded outside the capture).

Program ``pid`` of a launch reads row ``pid`` of ``layout``, loads the addresses of its tensor and
casts them to typed pointers (``tl.load(addrs + i).to(tl.pointer_type(DT)) + start``, hinted
``tl.multiple_of(.., ALIGN)``), then processes ``<= block`` contiguous elements, so a launch costs
the same Python time for 1 or 1,000 tensors.  Kernels run a full chunk through an unmasked copy of
their body (16-byte accesses) and only the last chunk of a tensor through the masked copy.

Tensors must be dense (any dense memory format); tensor ``i`` of every list must have the same
shape and strides, so element ``k`` in memory is the same logical element in all lists.  Tensors
of one launch share their dtypes (one group per dtype combination).

Host cost of a cached plan: one key of the parameters' metadata plus every address, instead of
the per-tensor loop of ATen ops it replaces (measured: docs/benchmarks/README.md).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from itertools import chain
from operator import attrgetter
from typing import TypeVar

import numpy as np
import torch
import triton
import triton.language as tl
from torch import Tensor

BLOCK_CUDA = 4096
"""Elements per program on GPUs: 8 warps x 16 elements per thread (4 x 16-byte accesses)."""
BLOCK_INTERPRET = 1 << 15
"""Largest chunk in the CPU interpreter, where every program costs Python overhead."""
ALIGN_BYTES = 16
CACHE_SIZE = 32
V = TypeVar("V")

TL_DTYPES: dict[torch.dtype, tl.dtype] = {
    torch.float16: tl.float16,
    torch.bfloat16: tl.bfloat16,
    torch.float32: tl.float32,
    torch.float64: tl.float64,
}


def block_cap(device: torch.device) -> int:
    """Largest chunk for ``device`` (:data:`BLOCK_CUDA` or :data:`BLOCK_INTERPRET`)."""
    return BLOCK_CUDA if device.type == "cuda" else BLOCK_INTERPRET


def _block_size(device: torch.device, max_numel: int) -> int:
    """Elements per chunk: :data:`BLOCK_CUDA` on GPUs (masked lanes are free there); in the
    interpreter, whose cost grows with the chunk size, the smallest power of two holding the
    largest tensor, capped at :data:`BLOCK_INTERPRET`."""
    if device.type == "cuda":
        return BLOCK_CUDA
    return min(BLOCK_INTERPRET, triton.next_power_of_2(max(max_numel, 16)))


def tl_dtype(dtype: torch.dtype) -> tl.dtype:
    """The Triton element type of a floating-point torch dtype."""
    try:
        return TL_DTYPES[dtype]
    except KeyError:
        raise TypeError(f"Triton kernels support {list(TL_DTYPES)}, got {dtype}") from None


def _capturing(device: torch.device) -> bool:
    """Whether the current stream of ``device`` is capturing a CUDA graph (CPU: never)."""
    return device.type == "cuda" and torch.cuda.is_current_stream_capturing()


def _current_stream(device: torch.device) -> torch.cuda.Stream | None:
    """The stream work for ``device`` is queued on (``None`` on CPU)."""
    return torch.cuda.current_stream(device) if device.type == "cuda" else None


class _Cache:
    """Least-recently-used cache (at most :data:`CACHE_SIZE` unpinned entries), CUDA-graph aware.

    Outside capture a hit moves to the end and a miss is built, cached, and may evict the oldest
    unpinned entry (whose device tensors are then freed).  During capture a hit is pinned (moved to
    ``pinned``, never evicted, looked up first) and a miss is built but not cached, so an eager call
    never finds tables whose content only a graph replay writes.
    """

    def __init__(self) -> None:
        self.lru: OrderedDict[Hashable, object] = OrderedDict()
        self.pinned: dict[Hashable, object] = {}

    def get_or_build(self, key: Hashable, build: Callable[[], V], capturing: bool) -> V:
        """The value cached under ``key``, built by ``build()`` on a miss (cached unless ``capturing``)."""
        value = self.pinned.get(key)
        if value is not None:
            return value
        value = self.lru.get(key)
        if value is not None:
            if capturing:
                self.pinned[key] = self.lru.pop(key)
            else:
                self.lru.move_to_end(key)
            return value
        value = build()
        if not capturing:
            self.lru[key] = value
            if len(self.lru) > CACHE_SIZE:
                self.lru.popitem(last=False)
        return value

    def clear(self) -> None:
        """Drop the unpinned entries (pinned ones belong to captured CUDA graphs)."""
        self.lru.clear()


_DTYPE = attrgetter("dtype")
_LAYOUTS = _Cache()
_PLANS = _Cache()
_SCALARS = _Cache()
_GRAPH_SOURCES: list[Tensor] = []
"""Host sources of tables uploaded during a capture: the graph's copy nodes read them."""


@dataclass
class _Table:
    """An int64 table on the device (``data``), its host source, and the streams it is ordered on.

    ``ready`` is an event recorded after the upload on the upload stream (``None`` on CPU and for
    uploads captured in a graph, which are only used on the capturing stream)."""

    data: Tensor
    host: Tensor
    ready: torch.cuda.Event | None
    streams: set[torch.cuda.Stream]

    @classmethod
    def upload(cls, host: Tensor, device: torch.device, capturing: bool) -> _Table:
        """Copy ``host`` to ``device`` on the current stream with a non-blocking copy (no host sync),
        ordered before every later launch on that stream.

        Eagerly the source is pinned; it stays referenced by the table, and the caching host
        allocator also records the copy, so it is not reused before the copy has run.  During a
        capture the copy becomes a node of the graph that reads the source at every replay: the
        source is kept for good in :data:`_GRAPH_SOURCES` and left pageable (pinning during a
        capture can query the host allocator's CUDA events, which a global-mode capture forbids;
        ATen's multi-tensor apply also avoids pinned memory while capturing)."""
        stream = _current_stream(device)
        if stream is None:
            return cls(host, host, None, set())
        if capturing:
            _GRAPH_SOURCES.append(host)
            return cls(host.to(device, non_blocking=True), host, None, {stream})
        host = host.pin_memory()
        data = host.to(device, non_blocking=True)
        ready = torch.cuda.Event()
        ready.record(stream)
        return cls(data, host, ready, {stream})

    def order_on(self, stream: torch.cuda.Stream) -> None:
        """Make ``stream`` wait for the upload, and have the allocator keep ``data`` until the work
        queued on ``stream`` when it is freed has run (``record_stream``); once per stream.

        (Alternative rejected: keying plans by stream would re-upload them for every stream and,
        with the usual warm-up on a side stream, inside every CUDA-graph capture.)"""
        if stream in self.streams:
            return
        stream.wait_event(self.ready)
        self.data.record_stream(stream)
        self.streams.add(stream)


@dataclass(frozen=True)
class Group:
    """Tensors of one dtype combination: one kernel launch."""

    dtypes: tuple[tl.dtype, ...]  # element type per list
    layout: Tensor  # int64 [n_chunks, 3]: tensor index, first element, element count
    addrs: Tensor  # int64 [n_lists, n_tensors]
    n_tensors: int
    n_chunks: int
    offset: int  # index of the group's first chunk among the chunks of all groups
    align: int  # 16 when every chunk starts on a 16-byte boundary (16-byte accesses), else 1


@dataclass(frozen=True)
class Plan:
    """All groups of one multi-tensor call; ``n_chunks`` counts the chunks of every group."""

    groups: tuple[Group, ...]
    n_chunks: int
    block: int  # elements per chunk (the kernels' ``BLOCK``)
    tables: tuple[_Table, ...]  # every device table the groups read
    streams: set[torch.cuda.Stream]  # streams every table is ordered on

    def order_on(self, stream: torch.cuda.Stream) -> None:
        """Order every table of the plan on ``stream`` (see :meth:`_Table.order_on`)."""
        for table in self.tables:
            table.order_on(stream)
        self.streams.add(stream)


@dataclass(frozen=True)
class _LayoutGroup:
    dtypes: tuple[torch.dtype, ...]
    members: tuple[int, ...]  # tensor indices (into the lists) of this group
    layout: _Table
    n_chunks: int
    offset: int


def _is_dense(t: Tensor) -> bool:
    """Whether ``t`` covers exactly ``numel`` consecutive elements from ``data_ptr`` (any order)."""
    expected = 1
    for stride, size in sorted((st, s) for s, st in zip(t.shape, t.stride(), strict=True) if s != 1):
        if stride != expected:
            return False
        expected *= size
    return True


def _build_layout(lists: Sequence[Sequence[Tensor]], capturing: bool) -> tuple[int, tuple[_LayoutGroup, ...]]:
    first = lists[0]
    device = first[0].device
    block = _block_size(device, max(t.numel() for t in first))
    by_dtype: dict[tuple[torch.dtype, ...], list[int]] = {}
    for i, t in enumerate(first):
        for lst in lists:
            u = lst[i]
            if u.device != device:
                raise ValueError(f"all tensors must be on {device}, got {u.device}")
            if u.shape != t.shape or u.stride() != t.stride():
                raise ValueError(
                    f"tensor {i}: shapes/strides differ between lists ({tuple(t.shape)}/{t.stride()} vs "
                    f"{tuple(u.shape)}/{u.stride()})"
                )
        if t.numel() and not _is_dense(t):
            raise ValueError(f"tensor {i} is not dense (shape {tuple(t.shape)}, strides {t.stride()})")
        if t.numel():
            by_dtype.setdefault(tuple(lst[i].dtype for lst in lists), []).append(i)
    groups = []
    offset = 0
    for dtypes, members in by_dtype.items():
        for dt in dtypes:
            tl_dtype(dt)  # unsupported dtypes raise here, before anything is launched
        sizes = np.array([first[i].numel() for i in members], dtype=np.int64)
        per = (sizes + block - 1) // block
        tensor = np.repeat(np.arange(len(members), dtype=np.int64), per)
        starts = (np.arange(per.sum(), dtype=np.int64) - np.repeat(np.cumsum(per) - per, per)) * block
        counts = np.minimum(block, sizes[tensor] - starts)
        table = _Table.upload(torch.from_numpy(np.stack([tensor, starts, counts], axis=1)), device, capturing)
        groups.append(_LayoutGroup(dtypes, tuple(members), table, len(tensor), offset))
        offset += len(tensor)
    return block, tuple(groups)


def _build_plan(
    lists: Sequence[Sequence[Tensor]], capturing: bool, block: int, layout: tuple[_LayoutGroup, ...]
) -> Plan:
    device = lists[0][0].device
    groups = []
    tables = []
    for lg in layout:
        ptrs = [lst[i].data_ptr() for lst in lists for i in lg.members]
        aligned = all(p % ALIGN_BYTES == 0 for p in ptrs) and all(
            block * dt.itemsize % ALIGN_BYTES == 0 for dt in lg.dtypes
        )
        addrs = _Table.upload(torch.tensor(ptrs, dtype=torch.int64), device, capturing)
        tables += [lg.layout, addrs]
        groups.append(
            Group(
                dtypes=tuple(tl_dtype(dt) for dt in lg.dtypes),
                layout=lg.layout.data,
                addrs=addrs.data,
                n_tensors=len(lg.members),
                n_chunks=lg.n_chunks,
                offset=lg.offset,
                align=ALIGN_BYTES if aligned else 1,
            )
        )
    streams = set.intersection(*(t.streams for t in tables)) if tables else set()
    return Plan(tuple(groups), sum(g.n_chunks for g in groups), block, tuple(tables), streams)


def plan(lists: Sequence[Sequence[Tensor]]) -> Plan:
    """The (cached) launch plan for parallel tensor lists ``lists`` (all of the same length).

    Fast path (every call): the key is the metadata of ``lists[0]`` (the parameters: dtype, shape,
    strides) plus the addresses of all tensors; keying on the shapes/strides of every list would
    about double the host cost of each call.  Tensors of the other lists are checked
    against ``lists[0]`` whenever a plan is built, i.e. the first time a set of addresses is seen;
    a later call with the same addresses is assumed to pass tensors of the same shapes and dtypes
    (true for gradients, momentum buffers and ``empty_like`` outputs of the parameters).

    Call it with ``device`` current (:func:`.guard.device_guard`): tables are uploaded on, and
    ordered against, the current stream.
    """
    first = lists[0]
    if any(len(lst) != len(first) for lst in lists):
        raise ValueError(f"tensor lists differ in length: {[len(lst) for lst in lists]}")
    device = first[0].device
    key = (
        block_cap(device),
        device,
        tuple(map(_DTYPE, first)),
        tuple(map(Tensor.size, first)),
        tuple(map(Tensor.stride, first)),
        tuple(map(Tensor.data_ptr, chain.from_iterable(lists))),
    )
    capturing = _capturing(device)
    pl = _PLANS.get_or_build(
        key, lambda: _build_plan(lists, capturing, *_layout(lists, capturing)), capturing
    )
    if device.type == "cuda" and not capturing:
        stream = torch.cuda.current_stream(device)
        if stream not in pl.streams:
            pl.order_on(stream)
    return pl


def _layout(lists: Sequence[Sequence[Tensor]], capturing: bool) -> tuple[int, tuple[_LayoutGroup, ...]]:
    """Chunk size and chunk layout of ``lists``, validated and cached on every tensor's metadata."""
    device = lists[0][0].device
    key = (block_cap(device), device, tuple((t.dtype, t.shape, t.stride()) for lst in lists for t in lst))
    return _LAYOUTS.get_or_build(key, lambda: _build_layout(lists, capturing), capturing)


def device_scalar(value: float | Tensor, dtype: torch.dtype, device: torch.device, what: str) -> Tensor:
    """``value`` (the hyper-parameter named ``what``) as a 0-dim ``dtype`` tensor on ``device``.

    Python floats are rounded once to ``dtype`` (as ``torch.as_tensor(value, dtype=dtype)`` does)
    and cached, so constant hyper-parameters cost no launch and no host-to-device copy after the
    first call; a new value costs one ``torch.full`` launch, never a host sync.  The cache is keyed
    on the current stream too: a scalar is only read on the stream that filled it, so the fill is
    ordered before its readers and evicting it is safe (one fill per stream is cheaper than an
    event).  During a CUDA-graph capture the rules of :class:`_Cache` apply.
    """
    if isinstance(value, Tensor):
        if value.numel() != 1:
            raise ValueError(
                f"{what} must be a float or a one-element tensor, got shape {tuple(value.shape)}"
            )
        return value.to(device=device, dtype=dtype).reshape(())
    value = float(value)
    key = (value, dtype, device, _current_stream(device))
    return _SCALARS.get_or_build(
        key, lambda: torch.full((), value, dtype=dtype, device=device), _capturing(device)
    )
