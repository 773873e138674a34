// libFuzzer target: arbitrary bytes as a tiktoken file and as a tokenizer.json; whatever parses
// must build a tokenizer (or fail with a Status) and encode/decode without crashing.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "tokenizer/load.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  for (int form = 0; form < 2; ++form) {
    auto parsed =
        form == 0 ? herd::ParseTiktoken(bytes, "fuzz") : herd::ParseHfTokenizerJson(bytes, "fuzz");
    if (!parsed.ok()) continue;
    auto tok = herd::Tokenizer::Create(std::move(parsed).value());
    if (!tok.ok()) continue;
    herd::EncodeOptions opts;
    opts.allow_all_special = true;
    auto ids = tok->Encode(bytes.substr(0, 64), opts);
    auto text = tok->Decode(ids);
    if (!text.ok() || *text != bytes.substr(0, 64)) __builtin_trap();
  }
  return 0;
}
