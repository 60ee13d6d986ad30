// pybind11 bindings of focalsam_fast._C_cpu.  Python passes data pointers (ints), element counts
// and dtype codes; see focalsam_fast/kernels/_native.py for the torch-side wrapper.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "../common/checks.h"
#include "ops.h"

namespace py = pybind11;
using namespace focalsam;
using cpu::NumelList;
using cpu::PtrList;

namespace {

void sq_norm(int dtype, const PtrList& grads, const PtrList& params, const NumelList& numels,
             std::uintptr_t out, int num_threads) {
  const DType dt = dtype_from_code(dtype);
  check_sq_norm(grads, params, numels, out);
  check_num_threads("sq_norm", num_threads);
  py::gil_scoped_release nogil;
  cpu::sq_norm(dt, grads, params, numels, out, num_threads);
}

void perturb(int dtype, const PtrList& params, const PtrList& grads, const PtrList& out,
             const NumelList& numels, std::uintptr_t norm_ptr, double norm, std::uintptr_t rho_ptr,
             double rho, std::uintptr_t inv_scale_ptr, double inv_scale, bool adaptive, int num_threads) {
  const DType dt = dtype_from_code(dtype);
  check_perturb(params, grads, out, numels);
  check_num_threads("perturb", num_threads);
  py::gil_scoped_release nogil;
  cpu::perturb(dt, params, grads, out, numels, {norm_ptr, norm}, {rho_ptr, rho}, {inv_scale_ptr, inv_scale},
               adaptive, num_threads);
}

void sgd_step(int dtype, const PtrList& params, const PtrList& grads, const PtrList& grads2,
              const PtrList& momentum_buffers, const NumelList& numels, std::uintptr_t lr_ptr, double lr,
              double momentum, double dampening, double weight_decay, bool nesterov, bool maximize,
              bool first_step, std::uintptr_t found_inf, int num_threads) {
  const DType dt = dtype_from_code(dtype);
  check_sgd_step(params, grads, grads2, momentum_buffers, numels, momentum);
  check_num_threads("sgd_step", num_threads);
  py::gil_scoped_release nogil;
  cpu::sgd_step(dt, params, grads, grads2, momentum_buffers, numels, {lr_ptr, lr},
                SgdOptions{momentum, dampening, weight_decay, nesterov, maximize, first_step}, found_inf,
                num_threads);
}

void focal_loss(int dtype, std::uintptr_t logits, std::uintptr_t targets, std::uintptr_t coeff,
                std::uintptr_t scale, std::uintptr_t bias, std::uintptr_t margin, std::uintptr_t weight,
                std::int64_t rows, std::int64_t cols, std::uintptr_t losses, std::uintptr_t grad_a,
                std::uintptr_t grad_b, std::uintptr_t grad_scale_ptr, double grad_scale, int num_threads) {
  const DType dt = dtype_from_code(dtype);
  const ScalarArg scaled{grad_scale_ptr, grad_scale};
  const FocalLossArgs args{logits, targets, coeff,  scale, bias, margin, weight,
                           losses, grad_a,  grad_b, rows,  cols, scaled};
  check_focal_loss(args);
  check_num_threads("focal_loss", num_threads);
  py::gil_scoped_release nogil;
  cpu::focal_loss(dt, args, num_threads);
}

}  // namespace

PYBIND11_MODULE(_C_cpu, m) {
  m.doc() = "focalsam_fast CPU kernels (OpenMP); torch-free, called through focalsam_fast.kernels._native";
  m.def("sq_norm", &sq_norm, py::arg("dtype"), py::arg("grads"), py::arg("params"), py::arg("numels"),
        py::arg("out"), py::arg("num_threads"),
        "out = sum_t ||(|p_t|) g_t||^2 (params may be empty); deterministic chunked reduction");
  m.def("perturb", &perturb, py::arg("dtype"), py::arg("params"), py::arg("grads"), py::arg("out"),
        py::arg("numels"), py::arg("norm_ptr"), py::arg("norm"), py::arg("rho_ptr"), py::arg("rho"),
        py::arg("inv_scale_ptr"), py::arg("inv_scale"), py::arg("adaptive"), py::arg("num_threads"),
        "out = p + (p^2) (g s), s = rho / (norm inv + 1e-12) inv, out = p when norm is not finite; *_ptr "
        "(opmath "
        "scalars) override values");
  m.def("sgd_step", &sgd_step, py::arg("dtype"), py::arg("params"), py::arg("grads"), py::arg("grads2"),
        py::arg("momentum_buffers"), py::arg("numels"), py::arg("lr_ptr"), py::arg("lr"), py::arg("momentum"),
        py::arg("dampening"), py::arg("weight_decay"), py::arg("nesterov"), py::arg("maximize"),
        py::arg("first_step"), py::arg("found_inf"), py::arg("num_threads"),
        "g1 (+ g2) then one torch.optim.SGD update, in place; skipped when *found_inf (float32) != 0");
  m.def("focal_loss", &focal_loss, py::arg("dtype"), py::arg("logits"), py::arg("targets"), py::arg("coeff"),
        py::arg("scale"), py::arg("bias"), py::arg("margin"), py::arg("weight"), py::arg("rows"),
        py::arg("cols"), py::arg("losses"), py::arg("grad_a"), py::arg("grad_b"), py::arg("grad_scale_ptr"),
        py::arg("grad_scale"), py::arg("num_threads"),
        "row-wise losses and the two weighted logit gradients times grad_scale (weight may be 0)");
  m.def("available_isas", &cpu::available_isas, "instruction sets of the passes this CPU can run");
  m.def("isa", &cpu::current_isa, "instruction set the passes run with");
  m.def("set_isa", &cpu::set_isa, py::arg("name"), "run the passes with `name` (one of available_isas())");
  m.attr("stream_min_elements") = cpu::kStreamMinElements;
}
