// sq_norm: sum of squares over all tensors of a list (optionally of |p| * g), deterministic.
// Pass 1 (multi_tensor_apply): each block reduces each of its sub-chunks in opmath and writes the
// partial, as float64, to workspace[global sub-chunk index].  Pass 2: one block sums the partials
// in fixed order.  The partials do not depend on how many blocks share a chunk, so the bits of the
// result are the same on every GPU.
#include "../common/dtypes.h"
#include "../common/formulas.h"
#include "multi_tensor_apply.cuh"
#include "ops.h"
#include "reduce.cuh"

namespace focalsam::cuda {
namespace {

template <class T, bool kAdaptive>
struct SqNormFunctor {
  template <int depth>
  __device__ void operator()(const TensorListMeta<depth>& meta, double* partials) const {
    using A = opmath_t<T>;
    const ChunkView<depth> c(meta);
    for (int k = 0; k < c.sub_chunks; ++k) {
      const std::int64_t begin = k * kSubChunkSize;
      const std::int64_t n = c.size - begin < kSubChunkSize ? c.size - begin : kSubChunkSize;
      A acc = 0;
      if (n > 0) {
        T* ptr_list[depth];
#pragma unroll
        for (int d = 0; d < depth; ++d) ptr_list[d] = c.template ptr<T>(meta, d) + begin;
        for_each_tile<depth>(ptr_list, n, (1u << depth) - 1u, 0u, [&](T(&r)[depth][kILP<T>], int valid) {
#pragma unroll
          for (int i = 0; i < kILP<T>; ++i) {
            if (i < valid) {
              if constexpr (kAdaptive) {
                acc += sq_norm_term<A>(load(r[0][i]), load(r[depth - 1][i]));
              } else {
                acc += sq_norm_term<A>(load(r[0][i]));
              }
            }
          }
        });
      }
      acc = block_sum(acc);  // every thread of the block takes part (n is the same for all)
      if (threadIdx.x == 0) partials[c.first_sub + k] = static_cast<double>(acc);
    }
  }
};

template <class A>
__global__ void __launch_bounds__(kBlockSize)
    sum_partials_kernel(const double* partials, std::int64_t n, A* out) {
  double acc = 0.0;
  for (std::int64_t i = threadIdx.x; i < n; i += blockDim.x) acc += partials[i];
  acc = block_sum(acc);
  if (threadIdx.x == 0) *out = static_cast<A>(acc);
}

}  // namespace

std::int64_t sq_norm_workspace_size(const NumelList& numels) { return num_sub_chunks(numels); }

void sq_norm(DType dtype, const PtrList& grads, const PtrList& params, const NumelList& numels,
             std::uintptr_t out, std::uintptr_t workspace, const Launch& launch) {
  const DeviceGuard guard(launch.device);
  auto stream = reinterpret_cast<cudaStream_t>(launch.stream);
  auto* partials = reinterpret_cast<double*>(workspace);
  dispatch_dtype(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    if (params.empty()) {
      multi_tensor_apply<1>({&grads}, numels, launch.device, stream, SqNormFunctor<T, false>{}, partials);
    } else {
      multi_tensor_apply<2>({&grads, &params}, numels, launch.device, stream, SqNormFunctor<T, true>{},
                            partials);
    }
    sum_partials_kernel<opmath_t<T>>
        <<<1, kBlockSize, 0, stream>>>(partials, num_sub_chunks(numels), reinterpret_cast<opmath_t<T>*>(out));
    check_cuda(cudaGetLastError(), "sq_norm sum_partials_kernel");
  });
}

}  // namespace focalsam::cuda
