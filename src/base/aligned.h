// Buffers aligned to 64 bytes: a cache line, and the width of an AVX-512 register. The GEMM's
// micro-kernels load packed panels and store rows of C 16 floats at a time; in a std::vector from
// malloc (16-byte aligned) each of those accesses straddles two cache lines, and a training step of
// a small model ran ~6% slower for it.
#pragma once

#include <cstddef>
#include <new>
#include <vector>

namespace herd {

template <typename T, size_t kAlign = 64>
struct AlignedAllocator {
  using value_type = T;
  template <typename U>
  struct rebind {
    using other = AlignedAllocator<U, kAlign>;
  };
  AlignedAllocator() = default;
  template <typename U>
  AlignedAllocator(const AlignedAllocator<U, kAlign>&) noexcept {}  // NOLINT: allocator rebind
  T* allocate(size_t n) {
    return static_cast<T*>(::operator new (n * sizeof(T), std::align_val_t{kAlign}));
  }
  void deallocate(T* p, size_t) noexcept { ::operator delete (p, std::align_val_t{kAlign}); }
  friend bool operator==(const AlignedAllocator&, const AlignedAllocator&) { return true; }
};

// Float32 scratch, activations and gradients that the micro-kernels read and write.
using AlignedFloats = std::vector<float, AlignedAllocator<float>>;

}  // namespace herd
