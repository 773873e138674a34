// libFuzzer target: arbitrary bytes as a tiktoken file and as a tokenizer.json; whatever parses
// must build a tokenizer (or fail with a Status) and encode/decode without crashing, and round-trip
// exactly when the vocabulary has a token for every byte of the input (bytes without one are
// dropped by design, see bpe.cc).
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
    const std::string_view input = bytes.substr(0, 64);
    auto ids = tok->Encode(input, opts);
    auto text = tok->Decode(ids);
    if (!text.ok()) __builtin_trap();
    bool covered[256] = {};
    for (int32_t id = 0; id < tok->vocab_size(); ++id) {
      if (tok->IsSpecial(id)) continue;
      const std::string_view t = tok->TokenBytes(id);
      if (t.size() == 1) covered[static_cast<uint8_t>(t[0])] = true;
    }
    bool all_covered = true;
    for (char c : input) all_covered &= covered[static_cast<uint8_t>(c)];
    if (all_covered && *text != input) __builtin_trap();
  }
  return 0;
}
