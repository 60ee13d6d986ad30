// Scalar types, dtype codes and conversions shared by the CPU and CUDA modules (no torch headers).
//
// Every kernel stores in the tensor dtype T and computes in opmath_t<T>: double for float64,
// float for float32 / float16 / bfloat16 (the accumulation dtype of reference.acc_dtype).
#pragma once

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

// FS_HD: small helpers, always inlined.  On the CPU the passes are compiled once per instruction
// set (csrc/cpu/multi_tensor_*.cpp); forced inlining keeps an AVX2-compiled out-of-line copy of a
// shared helper from being picked by the linker for the baseline code.
#if defined(__CUDACC__)
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#define FS_HD __host__ __device__ __forceinline__
#else
#define FS_HD inline __attribute__((always_inline))
#endif

namespace focalsam {

// Codes used on the Python side (focalsam_fast/kernels/_native.py: _DTYPE_CODES).
enum class DType : int { Float32 = 0, Float64 = 1, Float16 = 2, BFloat16 = 3 };

inline DType dtype_from_code(int code) {
  if (code < 0 || code > 3) {
    throw std::invalid_argument("dtype code " + std::to_string(code) +
                                " is not one of 0 (float32), 1 (float64), 2 (float16), 3 (bfloat16)");
  }
  return static_cast<DType>(code);
}

#if defined(__CUDACC__)
using half_t = __half;
using bfloat16_t = __nv_bfloat16;
FS_HD float to_float(half_t v) { return __half2float(v); }
FS_HD float to_float(bfloat16_t v) { return __bfloat162float(v); }
FS_HD void from_float(float v, half_t& out) { out = __float2half_rn(v); }
FS_HD void from_float(float v, bfloat16_t& out) { out = __float2bfloat16_rn(v); }
#else
// Host-side storage types: IEEE binary16 and bfloat16 bit patterns, round-to-nearest-even stores.
struct half_t {
  std::uint16_t bits;
};
struct bfloat16_t {
  std::uint16_t bits;
};

FS_HD float bits_to_float(std::uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}
FS_HD std::uint32_t float_to_bits(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

FS_HD float to_float(half_t v) {
  const std::uint32_t sign = static_cast<std::uint32_t>(v.bits & 0x8000u) << 16;
  const std::uint32_t exp = (v.bits >> 10) & 0x1fu;
  std::uint32_t man = v.bits & 0x3ffu;
  if (exp == 0x1f) return bits_to_float(sign | 0x7f800000u | (man << 13));  // inf / nan
  if (exp != 0) return bits_to_float(sign | ((exp + 112u) << 23) | (man << 13));
  if (man == 0) return bits_to_float(sign);
  // subnormal half: value = man * 2^-24, exact in float
  const float mag = static_cast<float>(man) * 5.9604644775390625e-08f;
  return sign ? -mag : mag;
}

FS_HD void from_float(float f, half_t& out) {
  const std::uint32_t u = float_to_bits(f);
  const std::uint16_t sign = static_cast<std::uint16_t>((u >> 16) & 0x8000u);
  const std::uint32_t a = u & 0x7fffffffu;
  if (a >= 0x7f800000u) {  // inf / nan (keep nan quiet)
    out.bits = static_cast<std::uint16_t>(sign | 0x7c00u | (a > 0x7f800000u ? 0x200u : 0u));
    return;
  }
  if (a >= 0x477ff000u) {  // rounds to >= 65520: overflow to inf
    out.bits = static_cast<std::uint16_t>(sign | 0x7c00u);
    return;
  }
  if (a < 0x38800000u) {  // below the smallest normal half (2^-14): subnormal or zero
    // Adding 0.5 aligns the half subnormal grid (2^-24) to the float ulp so the FPU rounds (RNE).
    const float r = bits_to_float(a) + 0.5f;
    out.bits = static_cast<std::uint16_t>(sign | (float_to_bits(r) - 0x3f000000u));
    return;
  }
  const std::uint32_t odd = (a >> 13) & 1u;
  const std::uint32_t r = a + 0xc8000fffu + odd;  // rebias exponent (-112 << 23) and round to even
  out.bits = static_cast<std::uint16_t>(sign | (r >> 13));
}

FS_HD float to_float(bfloat16_t v) { return bits_to_float(static_cast<std::uint32_t>(v.bits) << 16); }

FS_HD void from_float(float f, bfloat16_t& out) {
  const std::uint32_t u = float_to_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) {  // nan
    out.bits = static_cast<std::uint16_t>((u >> 16) | 0x40u);
    return;
  }
  out.bits = static_cast<std::uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
#endif

template <class T>
struct OpMath {
  using type = float;
};
template <>
struct OpMath<double> {
  using type = double;
};
/// Compute type of a storage type: double for double, float otherwise.
template <class T>
using opmath_t = typename OpMath<T>::type;

template <class T>
FS_HD opmath_t<T> load(T v) {
  if constexpr (sizeof(T) == 2) {
    return to_float(v);
  } else {
    return v;
  }
}

template <class T>
FS_HD T store(opmath_t<T> v) {
  if constexpr (sizeof(T) == 2) {
    T out;
    from_float(v, out);
    return out;
  } else {
    return v;
  }
}

template <class T>
struct TypeTag {
  using type = T;
};

/// Calls ``f(TypeTag<T>{})`` with the storage type of ``dt``.
template <class F>
void dispatch_dtype(DType dt, F&& f) {
  switch (dt) {
    case DType::Float32: f(TypeTag<float>{}); break;
    case DType::Float64: f(TypeTag<double>{}); break;
    case DType::Float16: f(TypeTag<half_t>{}); break;
    case DType::BFloat16: f(TypeTag<bfloat16_t>{}); break;
  }
}

/// A 0-dim hyper-parameter: read from ``ptr`` (opmath dtype, on the kernel's device) when non-null,
/// else ``value``.  Lets rho, lr, the norm and 1/loss-scale live in device tensors (no host sync).
struct ScalarArg {
  std::uintptr_t ptr = 0;
  double value = 0.0;
};

template <class A>
struct DeviceScalar {
  const A* ptr;
  A value;
  FS_HD A get() const { return ptr != nullptr ? *ptr : value; }
};

template <class A>
FS_HD DeviceScalar<A> device_scalar(const ScalarArg& s) {
  return {reinterpret_cast<const A*>(s.ptr), static_cast<A>(s.value)};
}

}  // namespace focalsam
