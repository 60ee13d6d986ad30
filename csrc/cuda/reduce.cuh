// Deterministic block reductions (fixed shuffle tree, then fixed shared-memory tree).
#pragma once

#include <cuda_runtime.h>

namespace focalsam::cuda {

/// Sum of `v` over the block (blockDim.x a multiple of 32, at most 1024); valid in thread 0.
template <class A>
__device__ __forceinline__ A block_sum(A v) {
  __shared__ A warp_sums[32];
#pragma unroll
  for (int off = 16; off > 0; off /= 2) v += __shfl_down_sync(0xffffffffu, v, off);
  const int lane = threadIdx.x % 32;
  const int warp = threadIdx.x / 32;
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  if (warp == 0) {
    const int n_warps = blockDim.x / 32;
    v = lane < n_warps ? warp_sums[lane] : A(0);
#pragma unroll
    for (int off = 16; off > 0; off /= 2) v += __shfl_down_sync(0xffffffffu, v, off);
  }
  __syncthreads();  // warp_sums may be reused by a following call
  return v;
}

}  // namespace focalsam::cuda
