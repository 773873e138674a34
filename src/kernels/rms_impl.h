// Shared by the levels of kernels/backward.h's RMSNormBackwardRows: the fixed tree over its 8
// partial sums.
#pragma once

namespace herd::kernels::rms_impl {

inline double Combine8(const double* p) {
  return ((p[0] + p[4]) + (p[2] + p[6])) + ((p[1] + p[5]) + (p[3] + p[7]));
}

}  // namespace herd::kernels::rms_impl
