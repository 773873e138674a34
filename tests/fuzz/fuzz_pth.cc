// libFuzzer target: arbitrary bytes parsed as a torch.save .pth (ZIP + restricted unpickler) must
// give a TensorIndex or a Status, never a crash, a leak or an out-of-bounds read. Every accepted
// tensor's data range is touched so ASan checks its bounds.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "base/dtype.h"
#include "io/pth.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // An exact-size heap copy, so any read past the end is caught by ASan.
  auto bytes = std::make_shared<const std::string>(reinterpret_cast<const char*>(data), size);
  auto index = herd::ParsePth(bytes, "fuzz.pth");
  if (!index.ok()) {
    if (index.status().message().empty()) __builtin_trap();
    return 0;
  }
  volatile uint64_t sink = 0;
  for (const herd::TensorEntry& t : index->entries()) {
    const auto want = herd::BytesFor(t.dtype, static_cast<uint64_t>(t.numel()));
    if (!want || *want != t.n_bytes) __builtin_trap();
    if (t.n_bytes > 0) sink = sink + t.data[0] + t.data[t.n_bytes - 1];
    if (index->Find(t.name) != &t) __builtin_trap();
  }
  return 0;
}
