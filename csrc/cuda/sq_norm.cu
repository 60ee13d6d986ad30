// sq_norm: sum of squares over all tensors of a list (optionally of |p| * g), deterministic.
// Pass 1 (multi_tensor_apply): each block reduces its chunk in opmath and writes the partial, as
// float64, to workspace[global chunk index].  Pass 2: one block sums the partials in fixed order.
#include "../common/dtypes.h"
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
    T* ptr_list[depth];
#pragma unroll
    for (int d = 0; d < depth; ++d) ptr_list[d] = c.template ptr<T>(meta, d);
    A acc = 0;
    for_each_tile<depth>(ptr_list, c.size, (1u << depth) - 1u, 0u, [&](T (&r)[depth][kILP], int valid) {
#pragma unroll
      for (int k = 0; k < kILP; ++k) {
        if (k < valid) {
          A v = load(r[0][k]);
          if constexpr (kAdaptive) v = fabs(load(r[depth - 1][k])) * v;
          acc += v * v;
        }
      }
    });
    acc = block_sum(acc);
    if (threadIdx.x == 0) partials[meta.first_block + blockIdx.x] = static_cast<double>(acc);
  }
};

template <class A>
__global__ void __launch_bounds__(kBlockSize) sum_partials_kernel(const double* partials, std::int64_t n, A* out) {
  double acc = 0.0;
  for (std::int64_t i = threadIdx.x; i < n; i += blockDim.x) acc += partials[i];
  acc = block_sum(acc);
  if (threadIdx.x == 0) *out = static_cast<A>(acc);
}

}  // namespace

std::int64_t sq_norm_workspace_size(const NumelList& numels) { return num_chunks(numels); }

void sq_norm(DType dtype, const PtrList& grads, const PtrList& params, const NumelList& numels,
             std::uintptr_t out, std::uintptr_t workspace, const Launch& launch) {
  const DeviceGuard guard(launch.device);
  auto stream = reinterpret_cast<cudaStream_t>(launch.stream);
  auto* partials = reinterpret_cast<double*>(workspace);
  dispatch_dtype(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    if (params.empty()) {
      multi_tensor_apply<1>({&grads}, numels, stream, SqNormFunctor<T, false>{}, partials);
    } else {
      multi_tensor_apply<2>({&grads, &params}, numels, stream, SqNormFunctor<T, true>{}, partials);
    }
    sum_partials_kernel<opmath_t<T>><<<1, kBlockSize, 0, stream>>>(partials, num_chunks(numels),
                                                                    reinterpret_cast<opmath_t<T>*>(out));
    check_cuda(cudaGetLastError(), "sq_norm sum_partials_kernel");
  });
}

}  // namespace focalsam::cuda
