// Online log-sum-exp, shared by the CPU and CUDA focal-loss passes (host + device).
//
// A state (m, s) stands for the values x seen so far: m = max x (NaN once a NaN was seen) and
// s = sum exp(x - m).  States are combined by lse_merge in any tree order; lse_value gives
// torch.logsumexp of the values, special cases included:
//   a NaN                -> NaN            (ATen: amax propagates NaN)
//   +inf present         -> +inf           (also two or more +inf: ATen shifts by 0, log(inf))
//   all -inf (or empty)  -> -inf           (ATen: log(0))
#pragma once

#include <cmath>
#include <limits>

#include "dtypes.h"

namespace focalsam {

template <class A>
FS_HD A fs_exp(A x) {
#if defined(__CUDA_ARCH__)
  return exp(x);
#else
  return std::exp(x);
#endif
}

template <class A>
FS_HD A fs_log(A x) {
#if defined(__CUDA_ARCH__)
  return log(x);
#else
  return std::log(x);
#endif
}

template <class A>
FS_HD bool fs_isnan(A x) {
  return x != x;
}

template <class A>
FS_HD bool fs_isfinite(A x) {
  return x - x == A(0);  // inf - inf and NaN - NaN are NaN
}

/// Running maximum m (type A, the logits' opmath type) and sum s (type S, A or wider) of exp(x - m).
template <class A, class S>
struct MaxSum {
  A m;
  S s;
};

/// The state of no values: (-inf, 0).
template <class A, class S>
FS_HD MaxSum<A, S> lse_identity() {
  return {-std::numeric_limits<A>::infinity(), S(0)};
}

/// The state of one value x: (x, 1).
template <class A, class S>
FS_HD MaxSum<A, S> lse_element(A x) {
  return {x, S(1)};
}

/// The state of the union of the values of a and b.  exp is evaluated in A, the sum in S.
template <class A, class S>
FS_HD MaxSum<A, S> lse_merge(MaxSum<A, S> a, MaxSum<A, S> b) {
  if (fs_isnan(a.m) || fs_isnan(b.m)) {
    return {std::numeric_limits<A>::quiet_NaN(), std::numeric_limits<S>::quiet_NaN()};
  }
  if (b.m > a.m) {
    const MaxSum<A, S> t = a;
    a = b;
    b = t;
  }
  // now a.m >= b.m: -inf adds nothing; an infinite maximum makes the result +inf whatever the sum
  if (b.m == -std::numeric_limits<A>::infinity() || a.m == std::numeric_limits<A>::infinity()) return a;
  return {a.m, a.s + b.s * static_cast<S>(fs_exp<A>(b.m - a.m))};
}

/// log(sum exp(x)) of the values of state v, as torch.logsumexp.
template <class A, class S>
FS_HD A lse_value(MaxSum<A, S> v) {
  if (v.m == std::numeric_limits<A>::infinity() || v.m == -std::numeric_limits<A>::infinity()) return v.m;
  return v.m + fs_log<A>(static_cast<A>(v.s));  // NaN state: NaN
}

}  // namespace focalsam
