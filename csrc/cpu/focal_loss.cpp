// Row-wise focal-loss pass on the CPU (reference.focal_loss): one row per OpenMP work item.
// Per row the adjusted logits z' are cached, reduced to a logsumexp by kLanes online (max, sum)
// states (lane l takes columns l, l + kLanes, ...: the layout of the CUDA kernel's threads)
// merged by a fixed tree, then one more sweep writes both gradients.  All arithmetic is the shared
// host/device code of csrc/common/logsumexp.h and focal.h; sums of exp run in float64 (thousands
// of terms in serial order).
#include <algorithm>
#include <vector>

#include "../common/focal.h"
#include "ops.h"

namespace focalsam::cpu {
namespace {

constexpr std::int64_t kLanes = 8;

template <class T>
void focal_loss_rows(const FocalLossArgs& a, int num_threads) {
  using A = opmath_t<T>;
  using State = MaxSum<A, double>;
  const auto* logits = reinterpret_cast<const T*>(a.logits);
  const auto* targets = reinterpret_cast<const std::int64_t*>(a.targets);
  const auto* coeff = reinterpret_cast<const A*>(a.coeff);
  const auto* scale = reinterpret_cast<const A*>(a.scale);
  const auto* bias = reinterpret_cast<const A*>(a.bias);
  const auto* margin = reinterpret_cast<const A*>(a.margin);
  const auto* weight = reinterpret_cast<const A*>(a.weight);
  auto* losses = reinterpret_cast<T*>(a.losses);
  auto* grad_a = reinterpret_cast<T*>(a.grad_a);
  auto* grad_b = reinterpret_cast<T*>(a.grad_b);
  const A batch = static_cast<A>(a.rows);
  const A grad_scale = device_scalar<A>(a.grad_scale).get();
  // one thread per 2^18 logits at least (small batches stay on the calling thread)
  const auto nt = static_cast<int>(
      std::max<std::int64_t>(1, std::min<std::int64_t>(num_threads, a.rows * a.cols / (std::int64_t{1} << 18))));
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    std::vector<A> adj(static_cast<std::size_t>(a.cols));
#pragma omp for schedule(static)
    for (std::int64_t i = 0; i < a.rows; ++i) {
      const T* z = logits + i * a.cols;
      const std::int64_t y = targets[i];
      for (std::int64_t j = 0; j < a.cols; ++j) adj[j] = focal_adjusted(load(z[j]), j, y, scale, bias, margin);
      State lane[kLanes];
      for (State& s : lane) s = lse_identity<A, double>();
      for (std::int64_t j0 = 0; j0 < a.cols; j0 += kLanes) {
        const std::int64_t n = std::min(kLanes, a.cols - j0);
        for (std::int64_t l = 0; l < n; ++l) lane[l] = lse_merge(lane[l], lse_element<A, double>(adj[j0 + l]));
      }
      for (std::int64_t w = kLanes / 2; w > 0; w /= 2) {
        for (std::int64_t l = 0; l < w; ++l) lane[l] = lse_merge(lane[l], lane[l + w]);
      }
      const FocalRow<A> row = focal_row(lane[0], y, a.cols, coeff, weight, batch, grad_scale);
      const A adj_y = focal_label_valid(y, a.cols) ? adj[y] : A(0);
      losses[i] = store<T>(focal_row_loss(row, adj_y));
      T* ga = grad_a + i * a.cols;
      T* gb = grad_b + i * a.cols;
      for (std::int64_t j = 0; j < a.cols; ++j) {
        A va, vb;
        focal_grad(row, adj[j], j == y, scale[j], va, vb);
        ga[j] = store<T>(va);
        gb[j] = store<T>(vb);
      }
    }
  }
}

}  // namespace

void focal_loss(DType dtype, const FocalLossArgs& args, int num_threads) {
  dispatch_dtype(dtype, [&](auto tag) { focal_loss_rows<typename decltype(tag)::type>(args, num_threads); });
}

}  // namespace focalsam::cpu
