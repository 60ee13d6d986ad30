// Argument checks shared by the pybind11 bindings of both modules: one function per op checks
// what the CPU and CUDA passes have in common (the bindings add threads or device).  Every
// failure raises ValueError (pybind11 maps std::invalid_argument) naming the op, the argument and
// its value.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "focal.h"

namespace focalsam {

[[noreturn]] inline void fail(const std::string& op, const std::string& msg) {
  throw std::invalid_argument(op + ": " + msg);
}

/// Every element count is >= 0.
inline void check_numels(const std::string& op, const std::vector<std::int64_t>& numels) {
  for (std::size_t i = 0; i < numels.size(); ++i) {
    if (numels[i] < 0) {
      fail(op, "numels[" + std::to_string(i) + "] = " + std::to_string(numels[i]) + " is negative");
    }
  }
}

/// `ptrs` holds one pointer per numel, non-null where numel > 0 (or is empty when `optional`).
inline void check_list(const std::string& op, const char* name, const std::vector<std::uintptr_t>& ptrs,
                       const std::vector<std::int64_t>& numels, bool optional) {
  if (optional && ptrs.empty()) return;
  if (ptrs.size() != numels.size()) {
    fail(op, std::string("len(") + name + ") = " + std::to_string(ptrs.size()) + " but len(numels) = " +
                 std::to_string(numels.size()) + (optional ? " (pass an empty list to omit it)" : ""));
  }
  for (std::size_t i = 0; i < ptrs.size(); ++i) {
    if (ptrs[i] == 0 && numels[i] > 0) {
      fail(op, std::string(name) + "[" + std::to_string(i) + "] is a null pointer but numels[" +
                   std::to_string(i) + "] = " + std::to_string(numels[i]));
    }
  }
}

inline void check_pointer(const std::string& op, const char* name, std::uintptr_t ptr) {
  if (ptr == 0) fail(op, std::string(name) + " is a null pointer");
}

inline void check_num_threads(const std::string& op, int num_threads) {
  if (num_threads < 1) fail(op, "num_threads = " + std::to_string(num_threads) + " must be >= 1");
}

inline void check_shape(const std::string& op, std::int64_t rows, std::int64_t cols) {
  if (rows < 0) fail(op, "rows = " + std::to_string(rows) + " is negative");
  if (cols < 1) fail(op, "cols = " + std::to_string(cols) + " must be >= 1 (at least one class)");
}

using Ptrs = std::vector<std::uintptr_t>;
using Numels = std::vector<std::int64_t>;

inline void check_sq_norm(const Ptrs& grads, const Ptrs& params, const Numels& numels, std::uintptr_t out) {
  check_numels("sq_norm", numels);
  check_list("sq_norm", "grads", grads, numels, false);
  check_list("sq_norm", "params", params, numels, true);
  check_pointer("sq_norm", "out", out);
}

inline void check_perturb(const Ptrs& params, const Ptrs& grads, const Ptrs& out, const Numels& numels) {
  check_numels("perturb", numels);
  check_list("perturb", "params", params, numels, false);
  check_list("perturb", "grads", grads, numels, false);
  check_list("perturb", "out", out, numels, false);
}

inline void check_sgd_step(const Ptrs& params, const Ptrs& grads, const Ptrs& grads2,
                           const Ptrs& momentum_buffers, const Numels& numels, double momentum) {
  check_numels("sgd_step", numels);
  check_list("sgd_step", "params", params, numels, false);
  check_list("sgd_step", "grads", grads, numels, false);
  check_list("sgd_step", "grads2", grads2, numels, true);
  if (momentum != 0.0) check_list("sgd_step", "momentum_buffers", momentum_buffers, numels, false);
}

/// The per-row pointers are needed only when there are rows; the tables always.
inline void check_focal_loss(const FocalLossArgs& a) {
  check_shape("focal_loss", a.rows, a.cols);
  if (a.rows > 0) {
    check_pointer("focal_loss", "logits", a.logits);
    check_pointer("focal_loss", "targets", a.targets);
    check_pointer("focal_loss", "losses", a.losses);
    check_pointer("focal_loss", "grad_a", a.grad_a);
    check_pointer("focal_loss", "grad_b", a.grad_b);
  }
  check_pointer("focal_loss", "coeff", a.coeff);
  check_pointer("focal_loss", "scale", a.scale);
  check_pointer("focal_loss", "bias", a.bias);
  check_pointer("focal_loss", "margin", a.margin);
}

}  // namespace focalsam
