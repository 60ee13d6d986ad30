// sgd_step: g = g1 (+ g2), then one exact torch.optim.SGD update of p and the momentum buffer in
// one pass.  Lists: params, grads, [grads2], [momentum_buffers]; the optional ones are compile-time
// (kG2, kBuf) so the kernel never touches a list it does not need.  A non-zero *found_inf (read
// by every block from device memory) skips the step.
#include "../common/formulas.h"
#include "multi_tensor_apply.cuh"
#include "ops.h"

namespace focalsam::cuda {
namespace {

template <class T, bool kG2, bool kBuf>
struct SgdFunctor {
  using A = opmath_t<T>;
  static constexpr int kDepth = 2 + kG2 + kBuf;
  static constexpr int kBufList = 2 + kG2;

  __device__ void operator()(const TensorListMeta<kDepth>& meta, SgdCoef<A> coef,
                             const float* found_inf) const {
    if (step_skipped(found_inf)) return;
    const ChunkView<kDepth> c(meta);
    T* ptrs[kDepth];
#pragma unroll
    for (int d = 0; d < kDepth; ++d) ptrs[d] = c.template ptr<T>(meta, d);
    const A lr = coef.lr.get();
    unsigned read_mask = (1u << kDepth) - 1u;
    if (kBuf && coef.first_step) read_mask &= ~(1u << kBufList);  // the buffer is overwritten
    const unsigned write_mask = 1u | (kBuf ? 1u << kBufList : 0u);
    for_each_tile<kDepth>(ptrs, c.size, read_mask, write_mask, [&](T(&r)[kDepth][kILP<T>], int) {
#pragma unroll
      for (int k = 0; k < kILP<T>; ++k) {
        A g = load(r[1][k]);
        // reference: grads[i] + grads2[i] is rounded to the tensor dtype before use
        if constexpr (kG2) g = load(store<T>(g + load(r[2][k])));
        A p = load(r[0][k]);
        A b = A(0);
        if constexpr (kBuf) {
          if (!coef.first_step) b = load(r[kBufList][k]);
        }
        sgd_element<A>(p, g, b, coef, lr);
        r[0][k] = store<T>(p);
        if constexpr (kBuf) r[kBufList][k] = store<T>(b);
      }
    });
  }
};

template <class T, bool kG2, bool kBuf>
void launch_sgd(const PtrList& params, const PtrList& grads, const PtrList& grads2, const PtrList& bufs,
                const NumelList& numels, const SgdCoef<opmath_t<T>>& coef, const float* found_inf,
                const Launch& launch) {
  constexpr int depth = 2 + kG2 + kBuf;
  std::vector<const PtrList*> lists = {&params, &grads};
  if (kG2) lists.push_back(&grads2);
  if (kBuf) lists.push_back(&bufs);
  multi_tensor_apply<depth>(lists, numels, launch.device, reinterpret_cast<cudaStream_t>(launch.stream),
                            SgdFunctor<T, kG2, kBuf>{}, coef, found_inf);
}

}  // namespace

void sgd_step(DType dtype, const PtrList& params, const PtrList& grads, const PtrList& grads2,
              const PtrList& momentum_buffers, const NumelList& numels, const ScalarArg& lr,
              const SgdOptions& options, std::uintptr_t found_inf, const Launch& launch) {
  const DeviceGuard guard(launch.device);
  const auto* skip = reinterpret_cast<const float*>(found_inf);
  const bool g2 = !grads2.empty();
  const bool buf = options.momentum != 0.0;
  dispatch_dtype(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const SgdCoef<opmath_t<T>> coef(options, lr);
    if (g2 && buf) {
      launch_sgd<T, true, true>(params, grads, grads2, momentum_buffers, numels, coef, skip, launch);
    } else if (g2) {
      launch_sgd<T, true, false>(params, grads, grads2, momentum_buffers, numels, coef, skip, launch);
    } else if (buf) {
      launch_sgd<T, false, true>(params, grads, grads2, momentum_buffers, numels, coef, skip, launch);
    } else {
      launch_sgd<T, false, false>(params, grads, grads2, momentum_buffers, numels, coef, skip, launch);
    }
  });
}

}  // namespace focalsam::cuda
