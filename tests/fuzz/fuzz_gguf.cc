// libFuzzer target: arbitrary bytes parsed as GGUF must give a File or a Status, never a crash, a
// leak or an out-of-bounds read. Every accepted tensor's data range is touched so ASan checks its
// bounds.
#include <cstddef>
#include <cstdint>
#include <string>

#include "io/gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // ParseBytes owns an exact-size heap copy, so any read past the end is caught by ASan.
  auto f = herd::gguf::File::ParseBytes(std::string(reinterpret_cast<const char*>(data), size),
                                        "fuzz.gguf");
  if (!f.ok()) {
    if (f.status().message().empty()) __builtin_trap();
    return 0;
  }
  volatile uint64_t sink = 0;
  for (const auto& [key, value] : f->metadata()) {
    sink = sink + key.size() + value.array_size();
    for (std::string_view s : value.strings) sink = sink + (s.empty() ? 0 : s.front() + s.back());
    (void)f->GetString(key);
    (void)f->GetUint(key);
    (void)f->GetFloat(key);
    (void)f->GetStringArray(key);
    (void)f->GetIntArray(key);
    (void)f->GetFloatArray(key);
    if (f->Find(key) != &value) __builtin_trap();  // keys are unique
  }
  for (const auto& t : f->tensors()) {
    if (t.n_bytes > 0) sink = sink + t.data[0] + t.data[t.n_bytes - 1];
    if ((t.offset % f->alignment()) != 0) __builtin_trap();
  }
  return 0;
}
