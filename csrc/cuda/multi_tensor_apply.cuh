// Multi-tensor launcher in the style of ATen's / apex's multi_tensor_apply.
//
// The lists are cut into chunks of kChunkSize elements.  Up to kMaxTensors[depth-1] tensors (depth
// parallel lists, e.g. params/grads/out) and kMaxChunks chunks are described by one TensorListMeta
// that is passed BY VALUE as a kernel argument (fits the classic 4 KB parameter limit); a launch is
// issued whenever the tensor table or the chunk table is full, carrying a partially processed
// tensor over to the next launch.  Each chunk is shared by blocks_per_chunk blocks (1 to
// kSubChunks, a power of two chosen per call so that the grid fills the GPU: small lists get more,
// shorter blocks); a block owns kSubChunks / blocks_per_chunk consecutive sub-chunks of
// kSubChunkSize elements.  Sub-chunks are numbered globally (chunk index * kSubChunks + position),
// which reductions use to write one partial per sub-chunk at a fixed position: the partials, and
// so the result, do not depend on blocks_per_chunk or on the GPU.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

namespace focalsam::cuda {

constexpr std::int64_t kChunkSize = 65536;
constexpr std::int64_t kSubChunkSize = 4096;
constexpr int kSubChunks = static_cast<int>(kChunkSize / kSubChunkSize);
constexpr int kBlockSize = 512;
constexpr int kMaxChunks = 320;
constexpr int kMaxTensors[5] = {110, 64, 48, 36, 30};
/// Bytes per vector access and elements per thread and tile (16 / sizeof(T): 4 float, 2 double, 8 half).
constexpr int kVecBytes = 16;
template <class T>
constexpr int kILP = kVecBytes / static_cast<int>(sizeof(T));

static_assert(kSubChunkSize % (kBlockSize * 8) == 0, "a sub-chunk is whole tiles for every dtype");

template <int depth>
struct TensorListMeta {
  static constexpr int kTensors = kMaxTensors[depth - 1];
  void* addresses[depth][kTensors];
  std::int64_t numel[kTensors];
  unsigned char chunk_to_tensor[kMaxChunks];
  int chunk_index[kMaxChunks];  // chunk of its tensor
  std::int64_t first_chunk;     // global index of this launch's chunk 0
  int blocks_per_chunk;         // a power of two dividing kSubChunks
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
__global__ void __launch_bounds__(kBlockSize)
    multi_tensor_kernel(TensorListMeta<depth> meta, Functor f, Args... args) {
  f(meta, args...);
}

/// Number of chunks for these element counts.
inline std::int64_t num_chunks(const std::vector<std::int64_t>& numels) {
  std::int64_t n = 0;
  for (std::int64_t v : numels) n += (v + kChunkSize - 1) / kChunkSize;
  return n;
}

/// Number of sub-chunks (= sq_norm partials) for these element counts.
inline std::int64_t num_sub_chunks(const std::vector<std::int64_t>& numels) {
  return num_chunks(numels) * kSubChunks;
}

/// Resident kBlockSize-thread blocks that fill `device` (SMs times blocks per SM), queried once
/// per device and cached (attribute queries do not synchronise).
inline std::int64_t blocks_to_fill(int device) {
  static std::mutex mutex;
  static std::vector<std::int64_t> cache;
  const std::lock_guard<std::mutex> lock(mutex);
  if (static_cast<std::size_t>(device) >= cache.size()) cache.resize(static_cast<std::size_t>(device) + 1, 0);
  std::int64_t& blocks = cache[static_cast<std::size_t>(device)];
  if (blocks == 0) {
    int sms = 0, threads = 0;
    check_cuda(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device), "SM count");
    check_cuda(cudaDeviceGetAttribute(&threads, cudaDevAttrMaxThreadsPerMultiProcessor, device),
               "threads per SM");
    blocks = static_cast<std::int64_t>(sms) * std::max(1, threads / kBlockSize);
  }
  return blocks;
}

/// Blocks per chunk for a call over `chunks` chunks: the smallest power of two (at most kSubChunks)
/// that gives at least `target` blocks.
inline int blocks_per_chunk(std::int64_t chunks, std::int64_t target) {
  int n = 1;
  while (n < kSubChunks && chunks * n < target) n *= 2;
  return n;
}

/// Launches `f` over all chunks of the `depth` lists (lists[d][t] is the data pointer of tensor t
/// in list d) on `stream` of `device` (the current device).  Empty tensors are skipped.
template <int depth, class Functor, class... Args>
void multi_tensor_apply(const std::vector<const std::vector<std::uintptr_t>*>& lists,
                        const std::vector<std::int64_t>& numels, int device, cudaStream_t stream, Functor f,
                        Args... args) {
  using Meta = TensorListMeta<depth>;
  Meta meta{};
  meta.blocks_per_chunk = blocks_per_chunk(num_chunks(numels), blocks_to_fill(device));
  int n_tensors = 0;
  int n_chunks = 0;
  std::int64_t launched = 0;
  auto launch = [&]() {
    meta.first_chunk = launched;
    const unsigned grid = static_cast<unsigned>(n_chunks * meta.blocks_per_chunk);
    multi_tensor_kernel<depth><<<grid, kBlockSize, 0, stream>>>(meta, f, args...);
    check_cuda(cudaGetLastError(), "multi_tensor_apply launch");
    launched += n_chunks;
    n_chunks = 0;
  };
  for (std::size_t t = 0; t < numels.size(); ++t) {
    if (numels[t] == 0) continue;
    for (int d = 0; d < depth; ++d) meta.addresses[d][n_tensors] = reinterpret_cast<void*>((*lists[d])[t]);
    meta.numel[n_tensors] = numels[t];
    ++n_tensors;
    const std::int64_t chunks = (numels[t] + kChunkSize - 1) / kChunkSize;
    for (std::int64_t c = 0; c < chunks; ++c) {
      meta.chunk_to_tensor[n_chunks] = static_cast<unsigned char>(n_tensors - 1);
      meta.chunk_index[n_chunks] = static_cast<int>(c);
      ++n_chunks;
      const bool tensor_done = c == chunks - 1;
      if (n_chunks == kMaxChunks || (tensor_done && n_tensors == Meta::kTensors)) {
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
  if (n_chunks > 0) launch();
}

// ---- per-block helpers used by the functors -------------------------------------------------

template <class T>
struct alignas(kVecBytes) AlignedVec {
  T v[kILP<T>];
};

template <class T>
__device__ __forceinline__ bool is_aligned(const T* p) {
  return reinterpret_cast<std::uintptr_t>(p) % kVecBytes == 0;
}

/// The elements this block owns: `size` elements from `offset` in tensor `tensor` (size may be 0
/// past the end of a tensor), made of `sub_chunks` sub-chunks, the first with global index `first_sub`.
template <int depth>
struct ChunkView {
  int tensor, sub_chunks;
  std::int64_t offset, size, first_sub;
  __device__ explicit ChunkView(const TensorListMeta<depth>& meta) {
    const int entry = static_cast<int>(blockIdx.x) / meta.blocks_per_chunk;
    const int part = static_cast<int>(blockIdx.x) % meta.blocks_per_chunk;
    sub_chunks = kSubChunks / meta.blocks_per_chunk;
    tensor = meta.chunk_to_tensor[entry];
    offset =
        static_cast<std::int64_t>(meta.chunk_index[entry]) * kChunkSize + part * sub_chunks * kSubChunkSize;
    size = meta.numel[tensor] - offset;
    if (size > sub_chunks * kSubChunkSize) size = sub_chunks * kSubChunkSize;
    if (size < 0) size = 0;
    first_sub = (meta.first_chunk + entry) * kSubChunks + part * sub_chunks;
  }
  template <class T>
  __device__ T* ptr(const TensorListMeta<depth>& meta, int list) const {
    return static_cast<T*>(meta.addresses[list][tensor]) + offset;
  }
};

/// Calls op(r, valid) for register tiles r[depth][kILP<T>] covering the `n` elements at `ptrs`
/// (r[d][k] for k < valid are meaningful).  Only lists whose bit is set in `read_mask` are loaded,
/// only those in `write_mask` are stored.  Uses 16-byte vector accesses when every pointer is
/// 16-byte aligned and n is a multiple of kILP<T>; the tile array has the vectors' alignment.
template <int depth, class T, class Op>
__device__ __forceinline__ void for_each_tile(T* const (&ptrs)[depth], std::int64_t n, unsigned read_mask,
                                              unsigned write_mask, Op&& op) {
  constexpr int ilp = kILP<T>;
  alignas(kVecBytes) T r[depth][ilp];
  bool aligned = n % ilp == 0;
#pragma unroll
  for (int d = 0; d < depth; ++d) aligned = aligned && is_aligned(ptrs[d]);
  if (aligned) {
    for (std::int64_t i = threadIdx.x; i * ilp < n; i += blockDim.x) {
#pragma unroll
      for (int d = 0; d < depth; ++d) {
        if (read_mask & (1u << d)) {
          *reinterpret_cast<AlignedVec<T>*>(r[d]) = reinterpret_cast<const AlignedVec<T>*>(ptrs[d])[i];
        }
      }
      op(r, ilp);
#pragma unroll
      for (int d = 0; d < depth; ++d) {
        if (write_mask & (1u << d)) {
          reinterpret_cast<AlignedVec<T>*>(ptrs[d])[i] = *reinterpret_cast<const AlignedVec<T>*>(r[d]);
        }
      }
    }
  } else {
    for (std::int64_t base = 0; base < n; base += static_cast<std::int64_t>(blockDim.x) * ilp) {
      int valid = 0;
#pragma unroll
      for (int k = 0; k < ilp; ++k) {
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
      for (int k = 0; k < ilp; ++k) {
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
