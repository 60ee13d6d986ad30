// Multi-tensor passes compiled with -mavx2 -mfma (x86-64 only; chosen at run time).
#define FOCALSAM_ISA isa_avx2
#include "multi_tensor_impl.h"
