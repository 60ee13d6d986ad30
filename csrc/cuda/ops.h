// Entry points of the CUDA module (focalsam_fast._C_cuda), called by bindings.cpp.  Pointers are
// device data pointers of dense tensors on `device`; work is enqueued on `stream` (a cudaStream_t
// passed as an integer, torch.cuda.current_stream().cuda_stream); nothing synchronises the host.
#pragma once

#include <cstdint>
#include <vector>

#include "../common/dtypes.h"
#include "../common/focal.h"
#include "../common/formulas.h"

namespace focalsam::cuda {

using PtrList = std::vector<std::uintptr_t>;
using NumelList = std::vector<std::int64_t>;

/// Where and on which stream to run.
struct Launch {
  int device;
  std::uintptr_t stream;
};

/// Number of float64 partials sq_norm needs in `workspace` (one per 65536-element chunk).
std::int64_t sq_norm_workspace_size(const NumelList& numels);

/// out (0-dim, opmath dtype) = sum_t ||(|p_t| if params) * g_t||^2: per-chunk partials written to
/// fixed slots of `workspace`, then one block sums them in a fixed order (deterministic).
void sq_norm(DType dtype, const PtrList& grads, const PtrList& params, const NumelList& numels,
             std::uintptr_t out, std::uintptr_t workspace, const Launch& launch);

/// out_t = p_t + s * (p_t^2 if adaptive) * g_t, s computed on the device from norm/rho/inv_scale;
/// out_t = p_t exactly when norm is not finite (decided on the device).
void perturb(DType dtype, const PtrList& params, const PtrList& grads, const PtrList& outs,
             const NumelList& numels, const ScalarArg& norm, const ScalarArg& rho, const ScalarArg& inv_scale,
             bool adaptive, const Launch& launch);

/// (g1 [+ g2]) then one torch.optim.SGD update of params / momentum_buffers in place; nothing is
/// written when found_inf (a device float32 pointer, 0 = none) holds a non-zero value.
void sgd_step(DType dtype, const PtrList& params, const PtrList& grads, const PtrList& grads2,
              const PtrList& momentum_buffers, const NumelList& numels, const ScalarArg& lr,
              const SgdOptions& options, std::uintptr_t found_inf, const Launch& launch);

/// Row-wise losses and both weighted logit gradients, one block per row (online logsumexp).
/// Labels outside [0, cols) give NaN losses and gradients (no device-to-host check).
void focal_loss(DType dtype, const FocalLossArgs& args, const Launch& launch);

}  // namespace focalsam::cuda
