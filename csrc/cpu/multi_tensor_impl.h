// Multi-tensor passes on the CPU: every list is cut into fixed chunks of kChunkSize elements and
// each OpenMP thread takes a contiguous run of chunks holding an equal share of the elements.
// Reductions combine per-chunk partials in chunk order, so results do not depend on the number of
// threads.
//
// Included once per instruction set by multi_tensor_<isa>.cpp with FOCALSAM_ISA naming the
// namespace (the AVX2+FMA build inlines the fused multiply-adds that ATen uses); multi_tensor.cpp
// picks one at run time.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <type_traits>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

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

/// Small passes (e.g. a 0.5M-parameter model) stay on the calling thread: waking a second thread
/// costs more than the pass, and much more on an oversubscribed machine.
constexpr std::int64_t kMinElementsPerThread = std::int64_t{1} << 18;

/// The chunks of one pass and how they are shared among threads.
struct Schedule {
  std::vector<Chunk> chunks;
  std::vector<std::int64_t> end;  // end[i]: elements in chunks[0..i]
  int threads;

  Schedule(const NumelList& numels, int requested) : chunks(make_chunks(numels)), end(chunks.size()) {
    std::int64_t total = 0;
    for (std::size_t i = 0; i < chunks.size(); ++i) end[i] = total += chunks[i].size;
    threads = static_cast<int>(
        std::max<std::int64_t>(1, std::min<std::int64_t>(requested, total / kMinElementsPerThread)));
  }

  std::int64_t elements() const { return end.empty() ? 0 : end.back(); }

  /// Calls f(i) for every chunk i.  Thread t of n takes the chunks that end after t/n and up to
  /// (t+1)/n of the elements: a schedule by chunk count would give one thread all the small
  /// tensors (ResNet-50: 40 % / 60 % of the elements for 2 threads).
  template <class F>
  void for_each(F&& f) const {
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
      const std::int64_t n = omp_get_num_threads(), t = omp_get_thread_num();
      const auto first = std::upper_bound(end.begin(), end.end(), elements() * t / n) - end.begin();
      const auto last = std::upper_bound(end.begin(), end.end(), elements() * (t + 1) / n) - end.begin();
      for (std::int64_t i = first; i < last; ++i) f(i);
    }
  }
};

template <class T>
T* at(const PtrList& ptrs, const Chunk& c) {
  return reinterpret_cast<T*>(ptrs[c.tensor]) + c.begin;
}

// Sum of squares of one chunk.  Tiles of kTile elements are summed in kLanes independent opmath
// accumulators (eight 256-bit registers: the loop runs at memory speed, and each lane adds only
// kTile / kLanes terms); tile sums are accumulated in double.
constexpr std::int64_t kTile = 1024;

template <class T, bool kAdaptive>
double chunk_sq_sum(const T* __restrict g, const T* __restrict p, std::int64_t n) {
  using A = opmath_t<T>;
  constexpr std::int64_t kLanes = 256 / sizeof(A);
  const auto term = [&](std::int64_t i) {
    if constexpr (kAdaptive) {
      return sq_norm_term<A>(load(g[i]), load(p[i]));
    } else {
      return sq_norm_term<A>(load(g[i]));
    }
  };
  double total = 0.0;
  for (std::int64_t t0 = 0; t0 < n; t0 += kTile) {
    const std::int64_t m = std::min(kTile, n - t0);
    const std::int64_t full = m - m % kLanes;
    A lane[kLanes] = {};
    for (std::int64_t i = 0; i < full; i += kLanes) {
      for (std::int64_t l = 0; l < kLanes; ++l) lane[l] += term(t0 + i + l);
    }
    for (std::int64_t i = full; i < m; ++i) lane[i - full] += term(t0 + i);
    for (std::int64_t w = kLanes / 2; w > 0; w /= 2) {
      for (std::int64_t l = 0; l < w; ++l) lane[l] += lane[l + w];
    }
    total += static_cast<double>(lane[0]);
  }
  return total;
}

template <class T, bool kAdaptive>
void perturb_chunk(const T* p, const T* g, T* o, std::int64_t n, opmath_t<T> s) {
  for (std::int64_t j = 0; j < n; ++j) o[j] = store<T>(perturb_element(load(p[j]), load(g[j]), s, kAdaptive));
}

#if defined(__AVX2__)
// perturb_chunk for fp32 with streaming stores; the same two (adaptive: three) roundings per
// element: e = g * s, e = (p * p) * e, out = p + e.  `o` must not alias `p` or `g`.
template <bool kAdaptive>
void perturb_chunk_stream(const float* __restrict p, const float* __restrict g, float* __restrict o,
                          std::int64_t n, float s) {
  std::int64_t j = 0;
  while (j < n && reinterpret_cast<std::uintptr_t>(o + j) % 32 != 0) ++j;
  perturb_chunk<float, kAdaptive>(p, g, o, j, s);
  const __m256 vs = _mm256_set1_ps(s);
  for (; j + 8 <= n; j += 8) {
    const __m256 pv = _mm256_loadu_ps(p + j);
    __m256 e = _mm256_mul_ps(_mm256_loadu_ps(g + j), vs);
    if constexpr (kAdaptive) e = _mm256_mul_ps(_mm256_mul_ps(pv, pv), e);
    _mm256_stream_ps(o + j, _mm256_add_ps(pv, e));
  }
  perturb_chunk<float, kAdaptive>(p + j, g + j, o + j, n - j, s);
  _mm_sfence();  // order the streamed lines before the stores that end the parallel region
}
#endif

// One chunk of sgd_step in a single vectorised loop (4 streams in, 2 out): the shared
// sgd_update (formulas.h) with every option that changes which operations run fixed at compile
// time.  `maximize` multiplies by -1 (exact); the two forms of lr are a loop-invariant select.
template <class T, int kMomentum, bool kNesterov, bool kWeightDecay, bool kHasG2>
void sgd_chunk(T* __restrict p, const T* __restrict g1, const T* __restrict g2, T* __restrict buf,
               std::int64_t n, const SgdCoef<opmath_t<T>>& coef, opmath_t<T> lr) {
  using A = opmath_t<T>;
  const SgdCoef<A> c = coef;  // a local copy: its fields stay in registers across the stores
  for (std::int64_t i = 0; i < n; ++i) {
    A g = load(g1[i]);
    if constexpr (kHasG2) g = load(store<T>(g + load(g2[i])));  // reference: g1 + g2 in the tensor dtype
    A pv = load(p[i]);
    A b = A(0);
    if constexpr (kMomentum == kMomentumStep) b = load(buf[i]);
    sgd_update<A, kMomentum, kNesterov, kWeightDecay>(pv, g, b, c, lr);
    if constexpr (kMomentum != kNoMomentum) buf[i] = store<T>(b);
    p[i] = store<T>(pv);
  }
}

/// Calls ``f(std::true_type{})`` or ``f(std::false_type{})``.
template <class F>
void with_flag(bool flag, F&& f) {
  if (flag) {
    f(std::true_type{});
  } else {
    f(std::false_type{});
  }
}

}  // namespace

void sq_norm(DType dtype, const PtrList& grads, const PtrList& params, const NumelList& numels,
             std::uintptr_t out, int num_threads) {
  const Schedule sched(numels, num_threads);
  std::vector<double> partial(sched.chunks.size());
  const bool adaptive = !params.empty();
  dispatch_dtype(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    sched.for_each([&](std::int64_t i) {
      const Chunk& c = sched.chunks[i];
      partial[i] = adaptive ? chunk_sq_sum<T, true>(at<const T>(grads, c), at<const T>(params, c), c.size)
                            : chunk_sq_sum<T, false>(at<const T>(grads, c), nullptr, c.size);
    });
    double total = 0.0;
    for (double v : partial) total += v;
    *reinterpret_cast<opmath_t<T>*>(out) = static_cast<opmath_t<T>>(total);
  });
}

void perturb(DType dtype, const PtrList& params, const PtrList& grads, const PtrList& outs,
             const NumelList& numels, const ScalarArg& norm, const ScalarArg& rho, const ScalarArg& inv_scale,
             bool adaptive, int num_threads) {
  const Schedule sched(numels, num_threads);
  [[maybe_unused]] const bool stream = sched.elements() >= kStreamMinElements;
  dispatch_dtype(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    using A = opmath_t<T>;
    const A norm_value = device_scalar<A>(norm).get();
    if (perturb_keeps_params(norm_value)) {
      sched.for_each([&](std::int64_t i) {
        const Chunk& c = sched.chunks[i];
        const T* p = at<const T>(params, c);
        T* o = at<T>(outs, c);
        if (o != p) std::copy(p, p + c.size, o);
      });
      return;
    }
    const A s = perturb_scale<A>(norm_value, device_scalar<A>(rho).get(), device_scalar<A>(inv_scale).get());
    sched.for_each([&](std::int64_t i) {
      const Chunk& c = sched.chunks[i];
      const T* p = at<const T>(params, c);
      const T* g = at<const T>(grads, c);
      T* o = at<T>(outs, c);  // may alias p (in-place perturbation): read-then-write per element
#if defined(__AVX2__)
      if constexpr (std::is_same_v<T, float>) {
        if (stream && o != p) {
          adaptive ? perturb_chunk_stream<true>(p, g, o, c.size, s)
                   : perturb_chunk_stream<false>(p, g, o, c.size, s);
          return;
        }
      }
#endif
      adaptive ? perturb_chunk<T, true>(p, g, o, c.size, s) : perturb_chunk<T, false>(p, g, o, c.size, s);
    });
  });
}

void sgd_step(DType dtype, const PtrList& params, const PtrList& grads, const PtrList& grads2,
              const PtrList& momentum_buffers, const NumelList& numels, const ScalarArg& lr,
              const SgdOptions& options, std::uintptr_t found_inf, int num_threads) {
  if (step_skipped(reinterpret_cast<const float*>(found_inf))) return;
  const Schedule sched(numels, num_threads);
  const bool has_g2 = !grads2.empty();
  dispatch_dtype(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    using A = opmath_t<T>;
    const SgdCoef<A> coef(options, lr);
    const A lr_value = coef.lr.get();
    with_sgd_options(coef, [&](auto momentum, auto nesterov, auto weight_decay) {
      with_flag(has_g2, [&](auto g2) {
        sched.for_each([&](std::int64_t i) {
          const Chunk& c = sched.chunks[i];
          sgd_chunk<T, momentum.value, nesterov.value, weight_decay.value, g2.value>(
              at<T>(params, c), at<const T>(grads, c), g2.value ? at<const T>(grads2, c) : nullptr,
              momentum.value != kNoMomentum ? at<T>(momentum_buffers, c) : nullptr, c.size, coef, lr_value);
        });
      });
    });
  });
}

}  // namespace focalsam::cpu::FOCALSAM_ISA
