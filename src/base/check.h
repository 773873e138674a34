// CHECK for invariants (always on), DCHECK for debug builds. A failed check is a bug in herd, not
// bad input: bad input gets a Status.
#pragma once

#include <cstdio>
#include <cstdlib>

namespace herd::internal {
[[noreturn]] inline void CheckFailed(const char* expr, const char* file, int line) {
  std::fprintf(stderr, "herd: CHECK failed: %s at %s:%d\n", expr, file, line);
  std::abort();
}
}  // namespace herd::internal

#define CHECK(cond) ((cond) ? (void)0 : ::herd::internal::CheckFailed(#cond, __FILE__, __LINE__))
#ifdef NDEBUG
#define DCHECK(cond) ((void)0)
#else
#define DCHECK(cond) CHECK(cond)
#endif
