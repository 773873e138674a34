// Internal to the kernels library: the K-quant dot kernels (weights q4_K / q5_K / q6_K x
// activations Q8_K, see qdot.h and kquant.h), one file per ISA level, reached through that level's
// GetKernel.
#pragma once

#include "base/dtype.h"
#include "kernels/qdot.h"

namespace herd::kernels {

namespace scalar {
// The reference kernels (qdot_kquant_scalar.cc); empty for other dtypes.
DotKernel GetKQuantKernel(DType t);
}  // namespace scalar

namespace avx2 {
// AVX2 + FMA + F16C (qdot_kquant_avx2.cc); empty for other dtypes.
DotKernel GetKQuantKernel(DType t);
}  // namespace avx2

namespace avx512 {
// AVX-512 F+BW+VL (qdot_kquant_avx512.cc), with VNNI's vpdpwssd if vnni; empty for other dtypes.
DotKernel GetKQuantKernel(DType t, bool vnni);
}  // namespace avx512

}  // namespace herd::kernels
