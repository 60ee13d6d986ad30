// focal_loss: one block per row.  Pass 1 streams the row once with an online logsumexp (each
// thread merges its columns into a (max, sum) state, then a fixed shuffle tree and a serial merge
// of the warps' states); pass 2 re-reads the row and writes both weighted gradients.  All
// arithmetic is the shared host/device code of csrc/common/logsumexp.h and focal.h, which the CPU
// pass runs too.  z'_j = a_j z_j + b_j - m_j [j = y].
#include <cuda_runtime.h>

#include "../common/dtypes.h"
#include "../common/focal.h"
#include "multi_tensor_apply.cuh"
#include "ops.h"

namespace focalsam::cuda {
namespace {

constexpr int kRowThreads = 256;

template <class A>
using State = MaxSum<A, A>;

/// The merged state of every thread of the block, returned to all threads.
template <class A>
__device__ __forceinline__ State<A> block_merge(State<A> v) {
  __shared__ A ms[kRowThreads / 32], ss[kRowThreads / 32];
#pragma unroll
  for (int off = 16; off > 0; off /= 2) {
    const State<A> o{__shfl_down_sync(0xffffffffu, v.m, off), __shfl_down_sync(0xffffffffu, v.s, off)};
    v = lse_merge(v, o);
  }
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) {
    ms[warp] = v.m;
    ss[warp] = v.s;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    v = {ms[0], ss[0]};
    for (int w = 1; w < kRowThreads / 32; ++w) v = lse_merge(v, State<A>{ms[w], ss[w]});
    ms[0] = v.m;
    ss[0] = v.s;
  }
  __syncthreads();
  return {ms[0], ss[0]};
}

template <class T>
__global__ void __launch_bounds__(kRowThreads) focal_loss_kernel(FocalLossArgs a) {
  using A = opmath_t<T>;
  const auto* coeff = reinterpret_cast<const A*>(a.coeff);
  const auto* scale = reinterpret_cast<const A*>(a.scale);
  const auto* bias = reinterpret_cast<const A*>(a.bias);
  const auto* margin = reinterpret_cast<const A*>(a.margin);
  const auto* weight = reinterpret_cast<const A*>(a.weight);
  const A batch = static_cast<A>(a.rows);
  const A grad_scale = device_scalar<A>(a.grad_scale).get();
  for (std::int64_t row = blockIdx.x; row < a.rows; row += gridDim.x) {
    const T* z = reinterpret_cast<const T*>(a.logits) + row * a.cols;
    T* ga = reinterpret_cast<T*>(a.grad_a) + row * a.cols;
    T* gb = reinterpret_cast<T*>(a.grad_b) + row * a.cols;
    const std::int64_t y = reinterpret_cast<const std::int64_t*>(a.targets)[row];
    auto adjusted = [&](std::int64_t j) {
      return focal_adjusted(load(z[j]), scale[j], bias[j], j == y ? margin[j] : A(0), j == y);
    };
    State<A> acc = lse_identity<A, A>();
    for (std::int64_t j = threadIdx.x; j < a.cols; j += blockDim.x) {
      acc = lse_merge(acc, lse_element<A, A>(adjusted(j)));
    }
    const FocalRow<A> r = focal_row(block_merge(acc), y, a.cols, coeff, weight, batch, grad_scale);
    if (threadIdx.x == 0) {
      const A adjusted_y = focal_label_valid(y, a.cols) ? adjusted(y) : A(0);
      reinterpret_cast<T*>(a.losses)[row] = store<T>(focal_row_loss(r, adjusted_y));
    }
    for (std::int64_t j = threadIdx.x; j < a.cols; j += blockDim.x) {
      A va, vb;
      focal_grad(r, focal_prob(r, adjusted(j)), j == y, scale[j], va, vb);
      ga[j] = store<T>(va);
      gb[j] = store<T>(vb);
    }
    __syncthreads();  // block_merge's shared memory is reused by the next row
  }
}

}  // namespace

void focal_loss(DType dtype, const FocalLossArgs& args, const Launch& launch) {
  if (args.rows == 0) return;
  const DeviceGuard guard(launch.device);
  const auto grid = static_cast<unsigned>(args.rows < 65535 ? args.rows : 65535);
  dispatch_dtype(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    focal_loss_kernel<T><<<grid, kRowThreads, 0, reinterpret_cast<cudaStream_t>(launch.stream)>>>(args);
    check_cuda(cudaGetLastError(), "focal_loss_kernel");
  });
}

}  // namespace focalsam::cuda
