// Multi-tensor launcher in the style of ATen's / apex's multi_tensor_apply.
//
// Up to kMaxTensors[depth-1] tensors (depth parallel lists, e.g. params/grads/out) and kMaxBlocks
// chunks of kChunkSize elements are described by one TensorListMeta that is passed BY VALUE as a
// kernel argument (fits the classic 4 KB parameter limit).  Each block handles one chunk; a
// launch is issued whenever the tensor table or the block table is full, carrying a partially
// processed tensor over to the next launch.  Blocks are numbered globally in launch order
// (meta.first_block + blockIdx.x == global chunk index), which reductions use to write their
// per-chunk partials at fixed positions (deterministic).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>


namespace focalsam::cuda {

constexpr std::int64_t kChunkSize = 65536;
constexpr int kBlockSize = 512;
constexpr int kILP = 4;
constexpr int kMaxBlocks = 320;
constexpr int kMaxTensors[5] = {110, 64, 48, 36, 30};

template <int depth>
struct TensorListMeta {
  static constexpr int kTensors = kMaxTensors[depth - 1];
  void* addresses[depth][kTensors];
  std::int64_t numel[kTensors];
  unsigned char block_to_tensor[kMaxBlocks];
  int block_to_chunk[kMaxBlocks];
  std::int64_t first_block;  // global chunk index of this launch's block 0
};
static_assert(sizeof(TensorListMeta<1>) <= 3968 && sizeof(TensorListMeta<2>) <= 3968 &&
                  sizeof(TensorListMeta<3>) <= 3968 && sizeof(TensorListMeta<4>) <= 3968 &&
                  sizeof(TensorListMeta<5>) <= 3968,
              "metadata must leave room for the functor within the 4 KB kernel-parameter limit");

inline void check_cuda(cudaError_t err, const char* what) {
  if (err != cudaSuccess) {
    throw std::runtime_error(std::string("focalsam CUDA error in ") + what + ": " + cudaGetErrorString(err));
  }
}

/// Sets the current device for the lifetime of the object, restoring the previous one after.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    check_cuda(cudaGetDevice(&previous_), "cudaGetDevice");
    if (previous_ != device) check_cuda(cudaSetDevice(device), "cudaSetDevice");
  }
  ~DeviceGuard() { cudaSetDevice(previous_); }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = 0;
};

template <int depth, class Functor, class... Args>
__global__ void __launch_bounds__(kBlockSize) multi_tensor_kernel(TensorListMeta<depth> meta, Functor f, Args... args) {
  f(meta, args...);
}

/// Number of chunks (= blocks, = reduction partials) for these element counts.
inline std::int64_t num_chunks(const std::vector<std::int64_t>& numels) {
  std::int64_t n = 0;
  for (std::int64_t v : numels) n += (v + kChunkSize - 1) / kChunkSize;
  return n;
}

/// Launches `f` over all chunks of the `depth` lists (lists[d][t] is the data pointer of tensor t
/// in list d).  Empty tensors are skipped.
template <int depth, class Functor, class... Args>
void multi_tensor_apply(const std::vector<const std::vector<std::uintptr_t>*>& lists,
                        const std::vector<std::int64_t>& numels, cudaStream_t stream, Functor f, Args... args) {
  using Meta = TensorListMeta<depth>;
  Meta meta{};
  int n_tensors = 0;
  int n_blocks = 0;
  std::int64_t launched = 0;
  auto launch = [&]() {
    meta.first_block = launched;
    multi_tensor_kernel<depth><<<n_blocks, kBlockSize, 0, stream>>>(meta, f, args...);
    check_cuda(cudaGetLastError(), "multi_tensor_apply launch");
    launched += n_blocks;
    n_blocks = 0;
  };
  for (std::size_t t = 0; t < numels.size(); ++t) {
    if (numels[t] == 0) continue;
    for (int d = 0; d < depth; ++d) meta.addresses[d][n_tensors] = reinterpret_cast<void*>((*lists[d])[t]);
    meta.numel[n_tensors] = numels[t];
    ++n_tensors;
    const std::int64_t chunks = (numels[t] + kChunkSize - 1) / kChunkSize;
    for (std::int64_t c = 0; c < chunks; ++c) {
      meta.block_to_tensor[n_blocks] = static_cast<unsigned char>(n_tensors - 1);
      meta.block_to_chunk[n_blocks] = static_cast<int>(c);
      ++n_blocks;
      const bool tensor_done = c == chunks - 1;
      if (n_blocks == kMaxBlocks || (tensor_done && n_tensors == Meta::kTensors)) {
        launch();
        if (tensor_done) {
          n_tensors = 0;
        } else {  // the current tensor continues in the next launch, as its table entry 0
          for (int d = 0; d < depth; ++d) meta.addresses[d][0] = meta.addresses[d][n_tensors - 1];
          meta.numel[0] = meta.numel[n_tensors - 1];
          n_tensors = 1;
        }
      }
    }
  }
  if (n_blocks > 0) launch();
}

// ---- per-chunk helpers used by the functors -------------------------------------------------

template <class T>
struct alignas(sizeof(T) * kILP) AlignedVec {
  T v[kILP];
};

template <class T>
__device__ __forceinline__ bool is_aligned(const T* p) {
  return reinterpret_cast<std::uintptr_t>(p) % (sizeof(T) * kILP) == 0;
}

/// The part of tensor `meta.block_to_tensor[blockIdx.x]` this block owns: pointer offset and size.
template <int depth>
struct ChunkView {
  int tensor;
  std::int64_t offset, size;
  __device__ explicit ChunkView(const TensorListMeta<depth>& meta) {
    tensor = meta.block_to_tensor[blockIdx.x];
    offset = static_cast<std::int64_t>(meta.block_to_chunk[blockIdx.x]) * kChunkSize;
    size = meta.numel[tensor] - offset;
    if (size > kChunkSize) size = kChunkSize;
  }
  template <class T>
  __device__ T* ptr(const TensorListMeta<depth>& meta, int list) const {
    return static_cast<T*>(meta.addresses[list][tensor]) + offset;
  }
};

/// Calls op(r, valid) for register tiles r[depth][kILP] covering the `n` elements of the block's
/// chunk in `ptrs` (r[d][k] for k < valid are meaningful).  Only lists whose bit is set in
/// `read_mask` are loaded, only those in `write_mask` are stored.  Uses vector accesses (16 bytes
/// for float32) when every pointer is aligned and n is a multiple of kILP.
template <int depth, class T, class Op>
__device__ __forceinline__ void for_each_tile(T* const (&ptrs)[depth], std::int64_t n, unsigned read_mask,
                                              unsigned write_mask, Op&& op) {
  T r[depth][kILP];
  bool aligned = n % kILP == 0;
#pragma unroll
  for (int d = 0; d < depth; ++d) aligned = aligned && is_aligned(ptrs[d]);
  if (aligned) {
    for (std::int64_t i = threadIdx.x; i * kILP < n; i += blockDim.x) {
#pragma unroll
      for (int d = 0; d < depth; ++d) {
        if (read_mask & (1u << d)) *reinterpret_cast<AlignedVec<T>*>(r[d]) = reinterpret_cast<const AlignedVec<T>*>(ptrs[d])[i];
      }
      op(r, kILP);
#pragma unroll
      for (int d = 0; d < depth; ++d) {
        if (write_mask & (1u << d)) reinterpret_cast<AlignedVec<T>*>(ptrs[d])[i] = *reinterpret_cast<AlignedVec<T>*>(r[d]);
      }
    }
  } else {
    for (std::int64_t base = 0; base < n; base += static_cast<std::int64_t>(blockDim.x) * kILP) {
      int valid = 0;
#pragma unroll
      for (int k = 0; k < kILP; ++k) {
        const std::int64_t idx = base + threadIdx.x + static_cast<std::int64_t>(k) * blockDim.x;
        if (idx < n) {
          ++valid;
#pragma unroll
          for (int d = 0; d < depth; ++d) {
            if (read_mask & (1u << d)) r[d][k] = ptrs[d][idx];
          }
        }
      }
      op(r, valid);
#pragma unroll
      for (int k = 0; k < kILP; ++k) {
        const std::int64_t idx = base + threadIdx.x + static_cast<std::int64_t>(k) * blockDim.x;
        if (idx < n) {
#pragma unroll
          for (int d = 0; d < depth; ++d) {
            if (write_mask & (1u << d)) ptrs[d][idx] = r[d][k];
          }
        }
      }
    }
  }
}

}  // namespace focalsam::cuda
