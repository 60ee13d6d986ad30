// perturb: out = p + (p^2 if adaptive) * (g * s) over all tensors, s = rho / (norm*inv + 1e-12) * inv
// (formulas.h) evaluated by every thread from the device scalars (no host sync); a norm that is not finite
// copies p to out instead (perturb_keeps_params).  Lists: params, grads, out.
#include "../common/formulas.h"
#include "multi_tensor_apply.cuh"
#include "ops.h"

namespace focalsam::cuda {
namespace {

template <class T>
struct PerturbFunctor {
  using A = opmath_t<T>;
  __device__ void operator()(const TensorListMeta<3>& meta, DeviceScalar<A> norm, DeviceScalar<A> rho,
                             DeviceScalar<A> inv_scale, bool adaptive) const {
    const ChunkView<3> c(meta);
    T* const ptrs[3] = {c.ptr<T>(meta, 0), c.ptr<T>(meta, 1), c.ptr<T>(meta, 2)};
    const A nv = norm.get();
    if (perturb_keeps_params(nv)) {  // the same decision in every block: out = p, g unread
      if (ptrs[2] == ptrs[0]) return;
      for_each_tile<3>(ptrs, c.size, 0b001u, 0b100u, [&](T(&r)[3][kILP<T>], int) {
#pragma unroll
        for (int k = 0; k < kILP<T>; ++k) r[2][k] = r[0][k];
      });
      return;
    }
    const A s = perturb_scale<A>(nv, rho.get(), inv_scale.get());
    // out (list 2) is written only; it may alias params (in-place perturbation).
    for_each_tile<3>(ptrs, c.size, 0b011u, 0b100u, [&](T(&r)[3][kILP<T>], int) {
#pragma unroll
      for (int k = 0; k < kILP<T>; ++k) {
        r[2][k] = store<T>(perturb_element<A>(load(r[0][k]), load(r[1][k]), s, adaptive));
      }
    });
  }
};

}  // namespace

void perturb(DType dtype, const PtrList& params, const PtrList& grads, const PtrList& outs,
             const NumelList& numels, const ScalarArg& norm, const ScalarArg& rho, const ScalarArg& inv_scale,
             bool adaptive, const Launch& launch) {
  const DeviceGuard guard(launch.device);
  dispatch_dtype(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    using A = opmath_t<T>;
    multi_tensor_apply<3>({&params, &grads, &outs}, numels, launch.device,
                          reinterpret_cast<cudaStream_t>(launch.stream), PerturbFunctor<T>{},
                          device_scalar<A>(norm), device_scalar<A>(rho), device_scalar<A>(inv_scale),
                          adaptive);
  });
}

}  // namespace focalsam::cuda
