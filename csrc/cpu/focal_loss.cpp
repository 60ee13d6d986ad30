// Row-wise focal-loss pass on the CPU (reference.focal_loss): one row per OpenMP work item.
// Per row: adjusted logits z' = a*z + b - m*[j == y] are cached, max and sum of exp(z' - max)
// give the logsumexp in a fixed (serial) order, then one more sweep writes both gradients.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "ops.h"

namespace focalsam::cpu {

void focal_loss(DType dtype, const FocalLossArgs& a, int num_threads) {
  const auto* targets = reinterpret_cast<const std::int64_t*>(a.targets);
  for (std::int64_t i = 0; i < a.rows; ++i) {
    if (targets[i] < 0 || targets[i] >= a.cols) {
      throw std::invalid_argument("focal_loss: targets[" + std::to_string(i) + "] = " +
                                  std::to_string(targets[i]) + " is not a class index in [0, " +
                                  std::to_string(a.cols) + ")");
    }
  }
  dispatch_dtype(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    using A = opmath_t<T>;
    const auto* logits = reinterpret_cast<const T*>(a.logits);
    const auto* coeff = reinterpret_cast<const A*>(a.coeff);
    const auto* scale = reinterpret_cast<const A*>(a.scale);
    const auto* bias = reinterpret_cast<const A*>(a.bias);
    const auto* margin = reinterpret_cast<const A*>(a.margin);
    const auto* weight = reinterpret_cast<const A*>(a.weight);
    auto* losses = reinterpret_cast<T*>(a.losses);
    auto* grad_a = reinterpret_cast<T*>(a.grad_a);
    auto* grad_b = reinterpret_cast<T*>(a.grad_b);
    const A batch = static_cast<A>(a.rows);
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
        for (std::int64_t j = 0; j < a.cols; ++j) adj[j] = load(z[j]) * scale[j] + bias[j];
        adj[y] = adj[y] - margin[y];
        A mx = -std::numeric_limits<A>::infinity();
        for (std::int64_t j = 0; j < a.cols; ++j) mx = std::max(mx, adj[j]);
        if (std::isinf(mx)) mx = A(0);  // as ATen's logsumexp: an infinite max shifts by 0
        double sum = 0;  // thousands of terms: a float64 running sum keeps the serial order accurate
        for (std::int64_t j = 0; j < a.cols; ++j) sum += static_cast<double>(std::exp(adj[j] - mx));
        const A lse = mx + std::log(static_cast<A>(sum));
        const A w = weight != nullptr ? weight[y] : A(1);
        const A cy = coeff[y];
        const A ca = (A(1) - cy) / batch;
        const A cb = cy / batch;
        losses[i] = store<T>(weight != nullptr ? (lse - adj[y]) * w : lse - adj[y]);
        T* ga = grad_a + i * a.cols;
        T* gb = grad_b + i * a.cols;
        for (std::int64_t j = 0; j < a.cols; ++j) {
          A cot = std::exp(adj[j] - lse) - (j == y ? A(1) : A(0));
          if (weight != nullptr) cot = cot * w;
          cot = cot * scale[j];
          ga[j] = store<T>(cot * ca);
          gb[j] = store<T>(cot * cb);
        }
      }
    }
  });
}

}  // namespace focalsam::cpu
