// Multi-tensor passes on the CPU: every list is cut into fixed chunks of kChunkSize elements and
// the chunks are spread over OpenMP threads (static schedule).  Reductions combine per-chunk
// partials in chunk order, so results do not depend on the number of threads.
//
// Included once per instruction set by multi_tensor_<isa>.cpp with FOCALSAM_ISA naming the
// namespace (the AVX2+FMA build inlines the fused multiply-adds that ATen uses); multi_tensor.cpp
// picks one at run time.
#include <algorithm>
#include <cmath>

#include "ops.h"

#ifndef FOCALSAM_ISA
#error "define FOCALSAM_ISA before including multi_tensor_impl.h"
#endif

namespace focalsam::cpu::FOCALSAM_ISA {
namespace {

struct Chunk {
  std::size_t tensor;
  std::int64_t begin, size;
};

std::vector<Chunk> make_chunks(const NumelList& numels) {
  std::vector<Chunk> chunks;
  for (std::size_t t = 0; t < numels.size(); ++t) {
    for (std::int64_t b = 0; b < numels[t]; b += kChunkSize) {
      chunks.push_back({t, b, std::min(kChunkSize, numels[t] - b)});
    }
  }
  return chunks;
}

/// Threads for a pass over `chunks`: one per kMinElementsPerThread elements, at most `requested`.
/// Small passes (e.g. a 0.5M-parameter model) stay on the calling thread: waking a second thread
/// costs more than the pass, and much more on an oversubscribed machine.
constexpr std::int64_t kMinElementsPerThread = std::int64_t{1} << 18;

int threads_for(const std::vector<Chunk>& chunks, int requested) {
  std::int64_t elements = 0;
  for (const Chunk& c : chunks) elements += c.size;
  return static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>(requested, elements / kMinElementsPerThread)));
}

template <class T>
T* at(const PtrList& ptrs, const Chunk& c) {
  return reinterpret_cast<T*>(ptrs[c.tensor]) + c.begin;
}

// Sum of squares of one chunk.  Tiles of kTile elements are summed in kLanes independent opmath
// accumulators (vectorisable, and each lane adds only kTile / kLanes terms); tile sums are
// accumulated in double.
constexpr std::int64_t kTile = 1024;
constexpr int kLanes = 16;

template <class T, bool kAdaptive>
double chunk_sq_sum(const T* __restrict g, const T* __restrict p, std::int64_t n) {
  using A = opmath_t<T>;
  double total = 0.0;
  for (std::int64_t t0 = 0; t0 < n; t0 += kTile) {
    const std::int64_t m = std::min(kTile, n - t0);
    A v[kTile];
    for (std::int64_t i = 0; i < m; ++i) {
      v[i] = load(g[t0 + i]);
      if constexpr (kAdaptive) v[i] = std::abs(load(p[t0 + i])) * v[i];
    }
    for (std::int64_t i = m; i < kTile; ++i) v[i] = A(0);
    A lane[kLanes] = {};
    for (std::int64_t i = 0; i < kTile; i += kLanes) {
      for (int l = 0; l < kLanes; ++l) lane[l] += v[i + l] * v[i + l];
    }
    for (int w = kLanes / 2; w > 0; w /= 2) {
      for (int l = 0; l < w; ++l) lane[l] += lane[l + w];
    }
    total += static_cast<double>(lane[0]);
  }
  return total;
}

// One chunk of sgd_step, staged: the operations of sgd_element (formulas.h) in the same order,
// each as a branch-free loop over a tile held in L1, so the compiler vectorises them.
template <class T>
void sgd_chunk(T* __restrict p, const T* __restrict g1, const T* __restrict g2, T* __restrict buf,
               std::int64_t n, const SgdCoef<opmath_t<T>>& c, opmath_t<T> lr) {
  using A = opmath_t<T>;
  A g[kTile], pv[kTile], bv[kTile];
  for (std::int64_t t0 = 0; t0 < n; t0 += kTile) {
    const std::int64_t m = std::min(kTile, n - t0);
    for (std::int64_t i = 0; i < m; ++i) g[i] = load(g1[t0 + i]);
    if (g2 != nullptr) {  // reference: grads[i] + grads2[i] is rounded to the tensor dtype
      for (std::int64_t i = 0; i < m; ++i) g[i] = load(store<T>(g[i] + load(g2[t0 + i])));
    }
    if (c.maximize) {
      for (std::int64_t i = 0; i < m; ++i) g[i] = -g[i];
    }
    for (std::int64_t i = 0; i < m; ++i) pv[i] = load(p[t0 + i]);
    if (c.weight_decay_nonzero) {
      for (std::int64_t i = 0; i < m; ++i) g[i] = add_alpha(g[i], pv[i], c.weight_decay);
    }
    if (c.use_momentum) {
      if (c.first_step) {
        for (std::int64_t i = 0; i < m; ++i) bv[i] = g[i];
      } else {
        for (std::int64_t i = 0; i < m; ++i) bv[i] = add_alpha(load(buf[t0 + i]) * c.momentum, g[i], c.one_minus_dampening);
      }
      for (std::int64_t i = 0; i < m; ++i) buf[t0 + i] = store<T>(bv[i]);
      if (c.nesterov) {
        for (std::int64_t i = 0; i < m; ++i) g[i] = add_alpha(g[i], bv[i], c.momentum);
      } else {
        for (std::int64_t i = 0; i < m; ++i) g[i] = bv[i];
      }
    }
    if (c.lr.ptr != nullptr) {  // p.sub_(g * lr)
      for (std::int64_t i = 0; i < m; ++i) p[t0 + i] = store<T>(pv[i] - g[i] * lr);
    } else {  // p.add_(g, alpha=-lr); lr_value already holds -lr
      for (std::int64_t i = 0; i < m; ++i) p[t0 + i] = store<T>(add_alpha(pv[i], g[i], lr));
    }
  }
}

}  // namespace

void sq_norm(DType dtype, const PtrList& grads, const PtrList& params, const NumelList& numels,
             std::uintptr_t out, int num_threads) {
  const std::vector<Chunk> chunks = make_chunks(numels);
  const auto n_chunks = static_cast<std::int64_t>(chunks.size());
  const int nt = threads_for(chunks, num_threads);
  std::vector<double> partial(chunks.size());
  const bool adaptive = !params.empty();
  dispatch_dtype(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (std::int64_t i = 0; i < n_chunks; ++i) {
      const Chunk& c = chunks[i];
      partial[i] = adaptive ? chunk_sq_sum<T, true>(at<const T>(grads, c), at<const T>(params, c), c.size)
                            : chunk_sq_sum<T, false>(at<const T>(grads, c), nullptr, c.size);
    }
    double total = 0.0;
    for (double v : partial) total += v;
    *reinterpret_cast<opmath_t<T>*>(out) = static_cast<opmath_t<T>>(total);
  });
}

void perturb(DType dtype, const PtrList& params, const PtrList& grads, const PtrList& outs,
             const NumelList& numels, const ScalarArg& norm, const ScalarArg& rho,
             const ScalarArg& inv_scale, bool adaptive, int num_threads) {
  const std::vector<Chunk> chunks = make_chunks(numels);
  const auto n_chunks = static_cast<std::int64_t>(chunks.size());
  const int nt = threads_for(chunks, num_threads);
  dispatch_dtype(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    using A = opmath_t<T>;
    const A s = perturb_scale<A>(device_scalar<A>(norm).get(), device_scalar<A>(rho).get(),
                                 device_scalar<A>(inv_scale).get());
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (std::int64_t i = 0; i < n_chunks; ++i) {
      const Chunk& c = chunks[i];
      const T* p = at<const T>(params, c);
      const T* g = at<const T>(grads, c);
      T* o = at<T>(outs, c);  // may alias p (in-place perturbation): read-then-write per element
      if (adaptive) {
        for (std::int64_t j = 0; j < c.size; ++j) o[j] = store<T>(perturb_element<A>(load(p[j]), load(g[j]), s, true));
      } else {
        for (std::int64_t j = 0; j < c.size; ++j) o[j] = store<T>(perturb_element<A>(load(p[j]), load(g[j]), s, false));
      }
    }
  });
}

void sgd_step(DType dtype, const PtrList& params, const PtrList& grads, const PtrList& grads2,
              const PtrList& momentum_buffers, const NumelList& numels, const ScalarArg& lr,
              const SgdOptions& options, int num_threads) {
  const std::vector<Chunk> chunks = make_chunks(numels);
  const auto n_chunks = static_cast<std::int64_t>(chunks.size());
  const int nt = threads_for(chunks, num_threads);
  const bool has_g2 = !grads2.empty();
  dispatch_dtype(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    using A = opmath_t<T>;
    const SgdCoef<A> coef(options, lr);
    const A lr_value = coef.lr.get();
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (std::int64_t i = 0; i < n_chunks; ++i) {
      const Chunk& c = chunks[i];
      sgd_chunk<T>(at<T>(params, c), at<const T>(grads, c), has_g2 ? at<const T>(grads2, c) : nullptr,
                   coef.use_momentum ? at<T>(momentum_buffers, c) : nullptr, c.size, coef, lr_value);
    }
  });
}

}  // namespace focalsam::cpu::FOCALSAM_ISA
