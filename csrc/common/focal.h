// Per-row and per-element maths of focal_loss (reference.focal_loss), shared by the CPU and CUDA
// passes (host + device).  With z'_j = a_j z_j + b_j - m_j [j = y] and lse = logsumexp_j z'_j:
//   loss    = w_y (lse - z'_y)
//   cot_j   = w_y a_j (softmax(z')_j - [j = y])
//   grad_a  = round_T((cot_j * (1 - c_y) / B) * grad_scale),  grad_b likewise with c_y / B.
// A label outside [0, C) is never used as an index: its row gets w = c = NaN (NaN loss and
// gradients).  softmax follows torch.softmax: the whole row is NaN when max z' is not finite.
#pragma once

#include <cstdint>
#include <limits>

#include "dtypes.h"
#include "logsumexp.h"

namespace focalsam {

/// Pointers and shape of focal_loss (host pointers for the CPU module, device pointers for the
/// CUDA one); tables (coeff, scale, bias, margin, weight) are opmath vectors of length cols,
/// targets int64 of length rows, weight may be 0 (no class weights).
struct FocalLossArgs {
  std::uintptr_t logits, targets, coeff, scale, bias, margin, weight;
  std::uintptr_t losses, grad_a, grad_b;
  std::int64_t rows, cols;
  ScalarArg grad_scale;  // multiplies both gradients (opmath; from a tensor when ptr is set)
};

/// z'_j from the logit z_j (already in opmath A) and the class tables' entries of column j.
template <class A>
FS_HD A focal_adjusted(A z, A scale_j, A bias_j, A margin_j, bool is_target) {
  const A x = z * scale_j + bias_j;
  return is_target ? x - margin_j : x;
}

/// Whether y is a class index (bad labels never index the tables).
FS_HD bool focal_label_valid(std::int64_t y, std::int64_t cols) { return y >= 0 && y < cols; }

/// Everything a row's loss and gradient elements need, computed once per row.
template <class A>
struct FocalRow {
  A lse;           // logsumexp_j z'_j
  bool probs_nan;  // max z' not finite: torch.softmax gives NaN for the whole row
  bool scale_w;    // multiply by w (class weights given, or a bad label)
  A w;             // weight[y]; NaN for a bad label
  A ca, cb;        // (1 - c_y) / B and c_y / B; NaN for a bad label
  A grad_scale;    // AMP loss scale applied to both gradients (1 without AMP)
};

/// The FocalRow of a row whose z' values reduced to `state`.  `weight` may be null.
template <class A, class S>
FS_HD FocalRow<A> focal_row(MaxSum<A, S> state, std::int64_t y, std::int64_t cols, const A* coeff,
                            const A* weight, A batch, A grad_scale) {
  const A nan = std::numeric_limits<A>::quiet_NaN();
  const bool valid = focal_label_valid(y, cols);
  FocalRow<A> r;
  r.lse = lse_value(state);
  r.probs_nan = !fs_isfinite(state.m);
  r.scale_w = weight != nullptr || !valid;
  r.w = !valid ? nan : (weight != nullptr ? weight[y] : A(1));
  const A cy = valid ? coeff[y] : nan;
  r.ca = (A(1) - cy) / batch;
  r.cb = cy / batch;
  r.grad_scale = grad_scale;
  return r;
}

/// The row's loss from z'_y (ignored for a bad label).
template <class A>
FS_HD A focal_row_loss(const FocalRow<A>& r, A adjusted_y) {
  const A l = r.lse - adjusted_y;
  return r.scale_w ? l * r.w : l;
}

/// softmax(z')_j as torch.softmax gives it (the whole row NaN when max z' is not finite).
template <class A>
FS_HD A focal_prob(const FocalRow<A>& r, A adjusted_j) {
  return r.probs_nan ? std::numeric_limits<A>::quiet_NaN() : fs_exp<A>(adjusted_j - r.lse);
}

/// Both gradient elements of column j from its probability (opmath A; the caller rounds them to
/// the logits' dtype).
template <class A>
FS_HD void focal_grad(const FocalRow<A>& r, A prob_j, bool is_target, A scale_j, A& grad_a, A& grad_b) {
  A cot = prob_j - (is_target ? A(1) : A(0));
  if (r.scale_w) cot = cot * r.w;
  cot = cot * scale_j;
  grad_a = (cot * r.ca) * r.grad_scale;
  grad_b = (cot * r.cb) * r.grad_scale;
}

}  // namespace focalsam
