// Row-wise focal-loss pass on the CPU (reference.focal_loss): one row per OpenMP work item.
// Per row the adjusted logits z' are cached and cut into blocks of kBlock columns; each block
// gives a (max, sum) state in sweeps over the block (NaN test, max, sum of exp(z' - max)), and the
// blocks' states are merged in column order, starting from the empty state, by the shared
// host/device merge (csrc/common/logsumexp.h, which the CUDA kernel runs per element).  One more
// sweep computes the probabilities and one writes both gradients (csrc/common/focal.h).  Sums of
// exp run in float64 (thousands of terms in serial order).
#include <algorithm>
#include <limits>
#include <vector>

#include "../common/focal.h"
#include "ops.h"

namespace focalsam::cpu {
namespace {

constexpr std::int64_t kBlock = 64;

/// Independent accumulators of the block sweeps (breaks the latency chains of max and add).
constexpr int kAcc = 4;  // the final sum below pairs them

/// The state of the n values at x (special values as lse_merge would leave them).
template <class A>
MaxSum<A, double> block_state(const A* x, std::int64_t n) {
  int nan = 0;  // an int OR (vectorised), apart from the max
  for (std::int64_t j = 0; j < n; ++j) nan |= fs_isnan(x[j]);
  if (nan) return lse_element<A, double>(std::numeric_limits<A>::quiet_NaN());
  A mx[kAcc];
  for (A& v : mx) v = -std::numeric_limits<A>::infinity();
  const std::int64_t full = n - n % kAcc;
  for (std::int64_t j = 0; j < full; j += kAcc) {
    for (int k = 0; k < kAcc; ++k) mx[k] = x[j + k] > mx[k] ? x[j + k] : mx[k];
  }
  for (std::int64_t j = full; j < n; ++j) mx[j - full] = x[j] > mx[j - full] ? x[j] : mx[j - full];
  A m = mx[0];
  for (int k = 1; k < kAcc; ++k) m = mx[k] > m ? mx[k] : m;
  if (m == -std::numeric_limits<A>::infinity()) return lse_identity<A, double>();
  if (m == std::numeric_limits<A>::infinity()) return lse_element<A, double>(m);
  double sum[kAcc] = {};
  for (std::int64_t j = 0; j < full; j += kAcc) {
    for (int k = 0; k < kAcc; ++k) sum[k] += static_cast<double>(fs_exp<A>(x[j + k] - m));
  }
  for (std::int64_t j = full; j < n; ++j) sum[j - full] += static_cast<double>(fs_exp<A>(x[j] - m));
  return {m, (sum[0] + sum[1]) + (sum[2] + sum[3])};
}

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
  const auto nt = static_cast<int>(std::max<std::int64_t>(
      1, std::min<std::int64_t>(num_threads, a.rows * a.cols / (std::int64_t{1} << 18))));
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    std::vector<A> adj(static_cast<std::size_t>(a.cols));
#pragma omp for schedule(static)
    for (std::int64_t i = 0; i < a.rows; ++i) {
      const T* z = logits + i * a.cols;
      const std::int64_t y = targets[i];
      for (std::int64_t j = 0; j < a.cols; ++j)
        adj[j] = focal_adjusted(load(z[j]), scale[j], bias[j], A(0), false);
      if (focal_label_valid(y, a.cols))
        adj[y] = focal_adjusted(load(z[y]), scale[y], bias[y], margin[y], true);
      State state = lse_identity<A, double>();
      for (std::int64_t j0 = 0; j0 < a.cols; j0 += kBlock) {
        state = lse_merge(state, block_state(adj.data() + j0, std::min(kBlock, a.cols - j0)));
      }
      const FocalRow<A> row = focal_row(state, y, a.cols, coeff, weight, batch, grad_scale);
      const A adj_y = focal_label_valid(y, a.cols) ? adj[y] : A(0);
      losses[i] = store<T>(focal_row_loss(row, adj_y));
      T* ga = grad_a + i * a.cols;
      T* gb = grad_b + i * a.cols;
      // probabilities in place (the exp calls), then a vectorisable sweep for the rest
      for (std::int64_t j = 0; j < a.cols; ++j) adj[j] = focal_prob(row, adj[j]);
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
