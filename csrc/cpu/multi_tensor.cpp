// Run-time choice of the instruction set for the multi-tensor passes (see multi_tensor_impl.h).
#include <algorithm>
#include <atomic>
#include <stdexcept>

#include "ops.h"

namespace focalsam::cpu {

#define FOCALSAM_DECLARE_ISA(isa)                                                                         \
  namespace isa {                                                                                         \
  void sq_norm(DType, const PtrList&, const PtrList&, const NumelList&, std::uintptr_t, int);             \
  void perturb(DType, const PtrList&, const PtrList&, const PtrList&, const NumelList&, const ScalarArg&, \
               const ScalarArg&, const ScalarArg&, bool, int);                                            \
  void sgd_step(DType, const PtrList&, const PtrList&, const PtrList&, const PtrList&, const NumelList&,  \
                const ScalarArg&, const SgdOptions&, std::uintptr_t, int);                                \
  }

FOCALSAM_DECLARE_ISA(isa_default)
#if defined(FOCALSAM_HAVE_AVX2)
FOCALSAM_DECLARE_ISA(isa_avx2)
#endif

namespace {
bool cpu_has_avx2() {
#if defined(FOCALSAM_HAVE_AVX2)
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

/// The instruction set the passes run with: the best one the CPU has, until set_isa changes it.
std::atomic<bool>& avx2_selected() {
  static std::atomic<bool> selected{cpu_has_avx2()};
  return selected;
}

bool use_avx2() { return avx2_selected().load(std::memory_order_relaxed); }
}  // namespace

std::vector<std::string> available_isas() {
  std::vector<std::string> names{"default"};
  if (cpu_has_avx2()) names.emplace_back("avx2");
  return names;
}

std::string current_isa() { return use_avx2() ? "avx2" : "default"; }

void set_isa(const std::string& name) {
  const std::vector<std::string> names = available_isas();
  if (std::find(names.begin(), names.end(), name) == names.end()) {
    std::string valid;
    for (const std::string& n : names) valid += (valid.empty() ? "'" : ", '") + n + "'";
    throw std::invalid_argument("set_isa: '" + name +
                                "' is not available on this CPU/build; valid: " + valid);
  }
  avx2_selected().store(name == "avx2", std::memory_order_relaxed);
}

#if defined(FOCALSAM_HAVE_AVX2)
#define FOCALSAM_CALL(fn, ...) (use_avx2() ? isa_avx2::fn(__VA_ARGS__) : isa_default::fn(__VA_ARGS__))
#else
#define FOCALSAM_CALL(fn, ...) isa_default::fn(__VA_ARGS__)
#endif

void sq_norm(DType dtype, const PtrList& grads, const PtrList& params, const NumelList& numels,
             std::uintptr_t out, int num_threads) {
  FOCALSAM_CALL(sq_norm, dtype, grads, params, numels, out, num_threads);
}

void perturb(DType dtype, const PtrList& params, const PtrList& grads, const PtrList& outs,
             const NumelList& numels, const ScalarArg& norm, const ScalarArg& rho, const ScalarArg& inv_scale,
             bool adaptive, int num_threads) {
  FOCALSAM_CALL(perturb, dtype, params, grads, outs, numels, norm, rho, inv_scale, adaptive, num_threads);
}

void sgd_step(DType dtype, const PtrList& params, const PtrList& grads, const PtrList& grads2,
              const PtrList& momentum_buffers, const NumelList& numels, const ScalarArg& lr,
              const SgdOptions& options, std::uintptr_t found_inf, int num_threads) {
  FOCALSAM_CALL(sgd_step, dtype, params, grads, grads2, momentum_buffers, numels, lr, options, found_inf,
                num_threads);
}

}  // namespace focalsam::cpu
