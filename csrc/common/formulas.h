// The per-element maths of the passes, shared by the CPU and CUDA modules so both follow
// focalsam_fast/kernels/reference.py operation by operation (same operands, same rounding order).
#pragma once

#include <cmath>

#include "dtypes.h"
#include "logsumexp.h"

namespace focalsam {

constexpr double kNormEps = 1e-12;  // reference.NORM_EPS

template <class A>
FS_HD A fs_abs(A x) {
#if defined(__CUDA_ARCH__)
  return fabs(x);
#else
  return std::abs(x);
#endif
}

/// One term of sq_norm: g^2 (plain) or (|p| g)^2 (adaptive).
template <class A>
FS_HD A sq_norm_term(A g) {
  return g * g;
}
template <class A>
FS_HD A sq_norm_term(A g, A p) {
  const A v = fs_abs(p) * g;
  return v * v;
}

/// s = rho / (norm * inv_scale + 1e-12) * inv_scale   (reference.perturb, in opmath A)
template <class A>
FS_HD A perturb_scale(A norm, A rho, A inv_scale) {
  return rho / (norm * inv_scale + static_cast<A>(kNormEps)) * inv_scale;
}

/// A norm that is not finite (NaN, +-inf: an overflowed gradient under a GradScaler) leaves the
/// weights where they are: out = p exactly, g is not read.
template <class A>
FS_HD bool perturb_keeps_params(A norm) {
  return !fs_isfinite(norm);
}

/// out = p + (p^2 if adaptive) * (g * s)
template <class A>
FS_HD A perturb_element(A p, A g, A s, bool adaptive) {
  A e = g * s;
  if (adaptive) e = (p * p) * e;
  return p + e;
}

/// sgd_step's found_inf (a float32 on the kernel's device, or null): a non-zero value (NaN
/// included) skips the whole step, nothing is written.
FS_HD bool step_skipped(const float* found_inf) { return found_inf != nullptr && *found_inf != 0.0f; }

/// Options of torch.optim.SGD, in the form the update uses them.
struct SgdOptions {
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
  bool maximize = false;
  bool first_step = false;
};

/// x + a * y as ATen evaluates ``x.add(y, alpha=a)``: one fused multiply-add (vectorised
/// ``fmadd`` on CPUs with FMA, contracted ``a * b + c`` in CUDA kernels).
template <class A>
FS_HD A add_alpha(A x, A y, A a) {
#if defined(__CUDA_ARCH__)
  return fma(a, y, x);
#else
  return std::fma(a, y, x);
#endif
}

/// SgdOptions converted once to the opmath type, plus the learning rate.
template <class A>
struct SgdCoef {
  A sign, momentum, one_minus_dampening, weight_decay;  // sign: -1 with maximize (g * -1 is exact)
  bool nesterov, first_step, use_momentum, weight_decay_nonzero;
  DeviceScalar<A> lr;  // from a tensor: p -= g * lr; from a float: p += (-lr) * g

  FS_HD SgdCoef(const SgdOptions& o, const ScalarArg& lr_arg)
      : sign(o.maximize ? A(-1) : A(1)),
        momentum(static_cast<A>(o.momentum)),
        one_minus_dampening(static_cast<A>(1.0 - o.dampening)),
        weight_decay(static_cast<A>(o.weight_decay)),
        nesterov(o.nesterov),
        first_step(o.first_step),
        use_momentum(o.momentum != 0.0),
        weight_decay_nonzero(o.weight_decay != 0.0),
        lr(lr_arg.ptr != 0 ? DeviceScalar<A>{reinterpret_cast<const A*>(lr_arg.ptr), A(0)}
                           : DeviceScalar<A>{nullptr, static_cast<A>(-lr_arg.value)}) {}
};

/// Momentum handling of one sgd_step call.
enum SgdMomentum : int { kNoMomentum = 0, kFirstStep = 1, kMomentumStep = 2 };

/// One element of reference.sgd_step, with the options that change which operations run fixed at
/// compile time: g already combined (g1 + g2); updates p and buf in place (buf is read only for
/// kMomentumStep).  Every ``add(..., alpha=)`` of the reference is one add_alpha; separate ops
/// round separately.  The CPU pass calls it with options fixed per call (one vectorised loop), the
/// CUDA kernels through sgd_element.
template <class A, int kMomentum, bool kNesterov, bool kWeightDecay>
FS_HD void sgd_update(A& p, A g, A& buf, const SgdCoef<A>& c, A lr) {
  g = g * c.sign;
  if constexpr (kWeightDecay) g = add_alpha(g, p, c.weight_decay);
  if constexpr (kMomentum == kFirstStep) buf = g;
  if constexpr (kMomentum == kMomentumStep) buf = add_alpha(buf * c.momentum, g, c.one_minus_dampening);
  if constexpr (kMomentum != kNoMomentum) g = kNesterov ? add_alpha(g, buf, c.momentum) : buf;
  // lr from a tensor arrives as +lr (p.sub_(g * lr)), from a float as -lr (p.add_(g, alpha=-lr)).
  p = c.lr.ptr != nullptr ? p - g * lr : add_alpha(p, g, lr);
}

template <int kValue>
struct IntTag {
  static constexpr int value = kValue;
};
template <bool kValue>
struct BoolTag {
  static constexpr bool value = kValue;
};

/// Calls f(IntTag<momentum mode>, BoolTag<nesterov>, BoolTag<weight decay>) for c's options.
template <class A, class F>
FS_HD void with_sgd_options(const SgdCoef<A>& c, F&& f) {
  auto wd = [&](auto mode, auto nesterov) {
    if (c.weight_decay_nonzero) {
      f(mode, nesterov, BoolTag<true>{});
    } else {
      f(mode, nesterov, BoolTag<false>{});
    }
  };
  auto nest = [&](auto mode) {
    if (c.nesterov) {
      wd(mode, BoolTag<true>{});
    } else {
      wd(mode, BoolTag<false>{});
    }
  };
  if (!c.use_momentum) {
    wd(IntTag<kNoMomentum>{}, BoolTag<false>{});
  } else if (c.first_step) {
    nest(IntTag<kFirstStep>{});
  } else {
    nest(IntTag<kMomentumStep>{});
  }
}

/// sgd_update with the options read at run time (the same branch for every element of a call).
template <class A>
FS_HD void sgd_element(A& p, A g, A& buf, const SgdCoef<A>& c, A lr) {
  with_sgd_options(c, [&](auto mode, auto nesterov, auto weight_decay) {
    sgd_update<A, decltype(mode)::value, decltype(nesterov)::value, decltype(weight_decay)::value>(p, g, buf,
                                                                                                   c, lr);
  });
}

}  // namespace focalsam
