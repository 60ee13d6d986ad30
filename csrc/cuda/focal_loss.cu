// focal_loss: one block per row.  Pass 1 streams the row once with an online logsumexp
// (running max m and sum s of exp(z' - m) per thread, merged by a fixed tree); pass 2 re-reads
// the row and writes both weighted gradients.  z'_j = a_j z_j + b_j - m_j [j = y].
#include <cuda_runtime.h>

#include <cmath>
#include <limits>

#include "../common/dtypes.h"
#include "multi_tensor_apply.cuh"
#include "ops.h"

namespace focalsam::cuda {
namespace {

constexpr int kRowThreads = 256;

template <class A>
struct MaxSum {
  A m, s;
};

/// Merge two (max, sum-of-exp-relative-to-max) pairs; -inf maxima contribute nothing.
template <class A>
__device__ __forceinline__ MaxSum<A> merge(MaxSum<A> a, MaxSum<A> b) {
  if (b.m > a.m) {
    const MaxSum<A> t = a;
    a = b;
    b = t;
  }
  if (b.m == -std::numeric_limits<A>::infinity()) return a;
  return {a.m, a.s + b.s * exp(b.m - a.m)};
}

template <class A>
__device__ __forceinline__ MaxSum<A> block_merge(MaxSum<A> v) {
  __shared__ A ms[kRowThreads / 32], ss[kRowThreads / 32];
#pragma unroll
  for (int off = 16; off > 0; off /= 2) {
    const MaxSum<A> o{__shfl_down_sync(0xffffffffu, v.m, off), __shfl_down_sync(0xffffffffu, v.s, off)};
    v = merge(v, o);
  }
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) {
    ms[warp] = v.m;
    ss[warp] = v.s;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    v = {ms[0], ss[0]};
    for (int w = 1; w < kRowThreads / 32; ++w) v = merge(v, MaxSum<A>{ms[w], ss[w]});
    ms[0] = v.m;
    ss[0] = v.s;
  }
  __syncthreads();
  return {ms[0], ss[0]};
}

template <class T>
__global__ void __launch_bounds__(kRowThreads) focal_loss_kernel(FocalLossArgs a) {
  using A = opmath_t<T>;
  constexpr A kInf = std::numeric_limits<A>::infinity();
  const auto* coeff = reinterpret_cast<const A*>(a.coeff);
  const auto* scale = reinterpret_cast<const A*>(a.scale);
  const auto* bias = reinterpret_cast<const A*>(a.bias);
  const auto* margin = reinterpret_cast<const A*>(a.margin);
  const auto* weight = reinterpret_cast<const A*>(a.weight);
  const A batch = static_cast<A>(a.rows);
  for (std::int64_t row = blockIdx.x; row < a.rows; row += gridDim.x) {
    const T* z = reinterpret_cast<const T*>(a.logits) + row * a.cols;
    T* ga = reinterpret_cast<T*>(a.grad_a) + row * a.cols;
    T* gb = reinterpret_cast<T*>(a.grad_b) + row * a.cols;
    const std::int64_t y = reinterpret_cast<const std::int64_t*>(a.targets)[row];
    const bool valid = y >= 0 && y < a.cols;
    auto adjusted = [&](std::int64_t j) {
      const A x = load(z[j]) * scale[j] + bias[j];
      return j == y ? x - margin[j] : x;
    };
    MaxSum<A> acc{-kInf, A(0)};
    for (std::int64_t j = threadIdx.x; j < a.cols; j += blockDim.x) acc = merge(acc, MaxSum<A>{adjusted(j), A(1)});
    acc = block_merge(acc);
    // as ATen's logsumexp: an infinite maximum shifts by 0
    const A lse = isinf(acc.m) ? log(acc.s * exp(acc.m)) : acc.m + log(acc.s);
    const A nan = std::numeric_limits<A>::quiet_NaN();
    const A w = !valid ? nan : (weight != nullptr ? weight[y] : A(1));
    const A cy = valid ? coeff[y] : nan;
    const A ca = (A(1) - cy) / batch;
    const A cb = cy / batch;
    if (threadIdx.x == 0) {
      const A l = valid ? lse - adjusted(y) : nan;
      reinterpret_cast<T*>(a.losses)[row] = store<T>(weight != nullptr ? l * w : l);
    }
    for (std::int64_t j = threadIdx.x; j < a.cols; j += blockDim.x) {
      A cot = exp(adjusted(j) - lse) - (j == y ? A(1) : A(0));
      if (weight != nullptr || !valid) cot = cot * w;
      cot = cot * scale[j];
      ga[j] = store<T>(cot * ca);
      gb[j] = store<T>(cot * cb);
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
