// Argument checks shared by the pybind11 bindings of both modules.  Every failure raises
// ValueError (pybind11 maps std::invalid_argument) naming the op, the argument and its value.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

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

}  // namespace focalsam
