// Multi-tensor passes for the baseline instruction set of the target.
#define FOCALSAM_ISA isa_default
#include "multi_tensor_impl.h"
