// Entry points of the CPU module (focalsam_fast._C_cpu).  Pointers are raw data pointers of
// dense tensors (element type given by `dtype`), numels their element counts.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../common/dtypes.h"
#include "../common/focal.h"
#include "../common/formulas.h"

namespace focalsam::cpu {

using PtrList = std::vector<std::uintptr_t>;
using NumelList = std::vector<std::int64_t>;

/// Elements per work item; the reduction order (and so the bits of sq_norm) depends only on it.
constexpr std::int64_t kChunkSize = 65536;

/// Passes writing at least this many elements to a separate output use non-temporal stores where
/// the instruction set has them (perturb, fp32): the output would not stay in the caches anyway,
/// and streaming it saves the read-for-ownership of every line (16 -> 12 bytes per element).
/// Smaller passes (ResNet-32: 0.47M) keep normal stores, so the next forward pass finds the
/// perturbed weights in cache.
constexpr std::int64_t kStreamMinElements = std::int64_t{1} << 23;

/// Instruction sets the passes are compiled for and this CPU runs ("default", then "avx2").
std::vector<std::string> available_isas();
/// The instruction set in use (the best available until set_isa).
std::string current_isa();
/// Runs the passes with `name` (one of available_isas(); std::invalid_argument otherwise).
void set_isa(const std::string& name);

/// out (0-dim, opmath dtype) = sum_t ||(|p_t| if params) * g_t||^2.  `params` empty: plain norm.
void sq_norm(DType dtype, const PtrList& grads, const PtrList& params, const NumelList& numels,
             std::uintptr_t out, int num_threads);

/// out_t = p_t + (p_t^2 if adaptive) * (g_t * s),  s = rho / (norm * inv + 1e-12) * inv (formulas.h);
/// out_t = p_t exactly when norm is not finite.
void perturb(DType dtype, const PtrList& params, const PtrList& grads, const PtrList& outs,
             const NumelList& numels, const ScalarArg& norm, const ScalarArg& rho, const ScalarArg& inv_scale,
             bool adaptive, int num_threads);

/// (g1 [+ g2]) then one torch.optim.SGD update of params / momentum_buffers in place; nothing is
/// written when found_inf (a float32 pointer, 0 = none) holds a non-zero value.
void sgd_step(DType dtype, const PtrList& params, const PtrList& grads, const PtrList& grads2,
              const PtrList& momentum_buffers, const NumelList& numels, const ScalarArg& lr,
              const SgdOptions& options, std::uintptr_t found_inf, int num_threads);

/// Row-wise losses and both weighted logit gradients (reference.focal_loss); a label outside
/// [0, cols) gives a NaN loss and NaN gradient rows.
void focal_loss(DType dtype, const FocalLossArgs& args, int num_threads);

}  // namespace focalsam::cpu
