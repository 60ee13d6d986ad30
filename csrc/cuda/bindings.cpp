// pybind11 bindings of focalsam_fast._C_cuda (compiled by the host compiler; no CUDA or torch
// headers).  Python passes device data pointers (ints), element counts, dtype codes, the device
// index and the cudaStream_t of torch.cuda.current_stream() as an int.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "../common/checks.h"
#include "ops.h"

namespace py = pybind11;
using namespace focalsam;
using cuda::Launch;
using cuda::NumelList;
using cuda::PtrList;

namespace {

void check_device(const std::string& op, int device) {
  if (device < 0) fail(op, "device = " + std::to_string(device) + " is not a CUDA device index");
}

void sq_norm(int dtype, const PtrList& grads, const PtrList& params, const NumelList& numels,
             std::uintptr_t out, std::uintptr_t workspace, std::int64_t workspace_size, int device,
             std::uintptr_t stream) {
  const DType dt = dtype_from_code(dtype);
  check_sq_norm(grads, params, numels, out);
  check_device("sq_norm", device);
  const std::int64_t need = cuda::sq_norm_workspace_size(numels);
  if (workspace_size < need) {
    fail("sq_norm", "workspace_size = " + std::to_string(workspace_size) +
                        " float64 slots but these numels need " + std::to_string(need) +
                        " (workspace_size(numels))");
  }
  if (need > 0) check_pointer("sq_norm", "workspace", workspace);
  py::gil_scoped_release nogil;
  cuda::sq_norm(dt, grads, params, numels, out, workspace, Launch{device, stream});
}

void perturb(int dtype, const PtrList& params, const PtrList& grads, const PtrList& out,
             const NumelList& numels, std::uintptr_t norm_ptr, double norm, std::uintptr_t rho_ptr,
             double rho, std::uintptr_t inv_scale_ptr, double inv_scale, bool adaptive, int device,
             std::uintptr_t stream) {
  const DType dt = dtype_from_code(dtype);
  check_perturb(params, grads, out, numels);
  check_device("perturb", device);
  py::gil_scoped_release nogil;
  cuda::perturb(dt, params, grads, out, numels, {norm_ptr, norm}, {rho_ptr, rho}, {inv_scale_ptr, inv_scale},
                adaptive, Launch{device, stream});
}

void sgd_step(int dtype, const PtrList& params, const PtrList& grads, const PtrList& grads2,
              const PtrList& momentum_buffers, const NumelList& numels, std::uintptr_t lr_ptr, double lr,
              double momentum, double dampening, double weight_decay, bool nesterov, bool maximize,
              bool first_step, std::uintptr_t found_inf, int device, std::uintptr_t stream) {
  const DType dt = dtype_from_code(dtype);
  check_sgd_step(params, grads, grads2, momentum_buffers, numels, momentum);
  check_device("sgd_step", device);
  py::gil_scoped_release nogil;
  cuda::sgd_step(dt, params, grads, grads2, momentum_buffers, numels, {lr_ptr, lr},
                 SgdOptions{momentum, dampening, weight_decay, nesterov, maximize, first_step}, found_inf,
                 Launch{device, stream});
}

void focal_loss(int dtype, std::uintptr_t logits, std::uintptr_t targets, std::uintptr_t coeff,
                std::uintptr_t scale, std::uintptr_t bias, std::uintptr_t margin, std::uintptr_t weight,
                std::int64_t rows, std::int64_t cols, std::uintptr_t losses, std::uintptr_t grad_a,
                std::uintptr_t grad_b, std::uintptr_t grad_scale_ptr, double grad_scale, int device,
                std::uintptr_t stream) {
  const DType dt = dtype_from_code(dtype);
  const ScalarArg scaled{grad_scale_ptr, grad_scale};
  const FocalLossArgs args{logits, targets, coeff,  scale, bias, margin, weight,
                           losses, grad_a,  grad_b, rows,  cols, scaled};
  check_focal_loss(args);
  check_device("focal_loss", device);
  py::gil_scoped_release nogil;
  cuda::focal_loss(dt, args, Launch{device, stream});
}

}  // namespace

PYBIND11_MODULE(_C_cuda, m) {
  m.doc() = "focalsam_fast CUDA kernels; torch-free, called through focalsam_fast.kernels._native";
  m.def("workspace_size", &cuda::sq_norm_workspace_size, py::arg("numels"),
        "float64 slots sq_norm needs in its workspace for these element counts");
  m.def("sq_norm", &sq_norm, py::arg("dtype"), py::arg("grads"), py::arg("params"), py::arg("numels"),
        py::arg("out"), py::arg("workspace"), py::arg("workspace_size"), py::arg("device"), py::arg("stream"),
        "out = sum_t ||(|p_t|) g_t||^2 (params may be empty); deterministic two-pass reduction");
  m.def("perturb", &perturb, py::arg("dtype"), py::arg("params"), py::arg("grads"), py::arg("out"),
        py::arg("numels"), py::arg("norm_ptr"), py::arg("norm"), py::arg("rho_ptr"), py::arg("rho"),
        py::arg("inv_scale_ptr"), py::arg("inv_scale"), py::arg("adaptive"), py::arg("device"),
        py::arg("stream"),
        "out = p + (p^2) (g s), s = rho / (norm inv + 1e-12) inv on the device, out = p when norm is not "
        "finite; "
        "*_ptr override values");
  m.def("sgd_step", &sgd_step, py::arg("dtype"), py::arg("params"), py::arg("grads"), py::arg("grads2"),
        py::arg("momentum_buffers"), py::arg("numels"), py::arg("lr_ptr"), py::arg("lr"), py::arg("momentum"),
        py::arg("dampening"), py::arg("weight_decay"), py::arg("nesterov"), py::arg("maximize"),
        py::arg("first_step"), py::arg("found_inf"), py::arg("device"), py::arg("stream"),
        "g1 (+ g2) then one torch.optim.SGD update, in place, one pass; skipped when *found_inf (float32) != "
        "0");
  m.def("focal_loss", &focal_loss, py::arg("dtype"), py::arg("logits"), py::arg("targets"), py::arg("coeff"),
        py::arg("scale"), py::arg("bias"), py::arg("margin"), py::arg("weight"), py::arg("rows"),
        py::arg("cols"), py::arg("losses"), py::arg("grad_a"), py::arg("grad_b"), py::arg("grad_scale_ptr"),
        py::arg("grad_scale"), py::arg("device"), py::arg("stream"),
        "row-wise losses and the two weighted logit gradients times grad_scale (weight may be 0)");
}
