// Scratch buffers reused across calls: grown when too small, never shrunk (shrinking and growing
// again would value-initialise the regrown part on every call).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace herd {

template <typename T, typename Alloc>
void Grow(std::vector<T, Alloc>& v, int64_t n) {
  if (v.size() < static_cast<size_t>(n)) v.resize(static_cast<size_t>(n));
}

}  // namespace herd
