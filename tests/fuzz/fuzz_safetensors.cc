// libFuzzer target: arbitrary bytes parsed as safetensors must give a TensorIndex or a Status,
// never a crash, a leak or an out-of-bounds read. Every accepted tensor's data range is touched so
// ASan checks its bounds, and its size must agree with its shape and dtype.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // An exact-size heap copy, so any read past the end is caught by ASan.
  auto bytes = std::make_shared<const std::string>(reinterpret_cast<const char*>(data), size);
  auto r = herd::ParseSafetensors(bytes, "fuzz.safetensors");
  if (!r.ok()) {
    if (r.status().message().empty()) __builtin_trap();
    return 0;
  }
  const auto* begin = reinterpret_cast<const uint8_t*>(bytes->data());
  volatile uint64_t sink = 0;
  for (const herd::TensorEntry& t : r->entries()) {
    if (t.data < begin || t.n_bytes > size || t.data + t.n_bytes > begin + size) __builtin_trap();
    if (t.n_bytes > 0) sink = sink + t.data[0] + t.data[t.n_bytes - 1];
    const int64_t numel = t.numel();  // must not overflow (UBSan)
    if (numel < 0) __builtin_trap();
    const auto need = herd::BytesFor(t.dtype, static_cast<uint64_t>(numel));
    if (!need || *need != t.n_bytes) __builtin_trap();
    if (r->Find(t.name) != &t) __builtin_trap();  // names are unique
  }
  return 0;
}
