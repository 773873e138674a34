// GGUF tokenizer metadata (llama.cpp's convention):
//   tokenizer.ggml.model       "gpt2" (byte-level BPE; "llama" is SentencePiece and not supported)
//   tokenizer.ggml.pre         pre-tokenizer name ("llama-bpe" for Llama 3, "smollm" for SmolLM2,
//                              "gpt-2"; see PreTokenizerFromName)
//   tokenizer.ggml.tokens      [string]: byte-level-alphabet text, by id (control tokens: literal
//                              text)
//   tokenizer.ggml.token_type  [i32]: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused,
//                              6 byte
//   tokenizer.ggml.merges      [string]: "a b", in priority order
//   tokenizer.ggml.bos_token_id / eos_token_id  u32
#include <unordered_map>

#include "io/gguf.h"
#include "tokenizer/load.h"

namespace herd {

Result<TokenizerData> LoadGgufTokenizer(const std::string& path) {
  HERD_ASSIGN_OR_RETURN(gguf::File file, gguf::File::Open(path));
  auto fail = [&](const Status& s) { return Status::Errorf("{}: {}", path, s.message()); };
  TokenizerData data;
  data.source = path;
  auto model = file.GetString("tokenizer.ggml.model");
  if (!model.ok()) return fail(model.status());
  if (*model != "gpt2")
    return Status::Errorf(
        "{}: tokenizer.ggml.model is \"{}\"; only \"gpt2\" (byte-level BPE) is supported", path,
        *model);
  auto tokens = file.GetStringArray("tokenizer.ggml.tokens");
  if (!tokens.ok()) return fail(tokens.status());
  const size_t n = (*tokens)->size();
  std::vector<int64_t> types(n, static_cast<int64_t>(TokenType::kNormal));
  if (file.Find("tokenizer.ggml.token_type")) {
    auto t = file.GetIntArray("tokenizer.ggml.token_type");
    if (!t.ok()) return fail(t.status());
    if ((*t)->size() != n)
      return Status::Errorf("{}: {} token types for {} tokens", path, (*t)->size(), n);
    types = **t;
  }
  data.tokens.reserve(n);
  data.types.reserve(n);
  std::unordered_map<std::string_view, int32_t> id_of;
  for (size_t id = 0; id < n; ++id) {
    const std::string_view text = (**tokens)[id];
    const int64_t t = types[id];
    if (t < 1 || t > 6) return Status::Errorf("{}: token {} has unknown type {}", path, id, t);
    data.types.push_back(static_cast<TokenType>(t));
    if (t == int64_t(TokenType::kNormal) || t == int64_t(TokenType::kByte)) {
      auto bytes = UnicodeToByte(text);
      if (!bytes.ok())
        return Status::Errorf("{}: token {}: {}", path, id, bytes.status().message());
      data.tokens.push_back(std::move(bytes).value());
    } else {
      data.tokens.push_back(std::string(text));
    }
    id_of.emplace(text, static_cast<int32_t>(id));
  }
  auto merges = file.GetStringArray("tokenizer.ggml.merges");
  if (!merges.ok()) return fail(merges.status());
  data.merges.reserve((*merges)->size());
  for (size_t r = 0; r < (*merges)->size(); ++r) {
    const std::string_view m = (**merges)[r];
    const size_t sp = m.find(' ');
    if (sp == std::string_view::npos || m.find(' ', sp + 1) != std::string_view::npos)
      return Status::Errorf("{}: merge {} '{}' is not two tokens", path, r, m);
    auto a = id_of.find(m.substr(0, sp)), b = id_of.find(m.substr(sp + 1));
    if (a == id_of.end() || b == id_of.end())
      return Status::Errorf("{}: merge {} '{}' uses a token not in the vocabulary", path, r, m);
    data.merges.emplace_back(a->second, b->second);
  }
  // llama.cpp matches whole tokens first (as tiktoken does) only for Llama 3's pre-tokenizer
  // types; "gpt-2" and "smollm" run plain BPE over the merges, as Hugging Face does for GPT-2 and
  // SmolLM2 (their tokenizer.json: model.ignore_merges false). The fallback below is Llama 3's.
  data.pre = PreTokenizer::kLlama3;
  data.ignore_merges = true;
  if (file.Find("tokenizer.ggml.pre")) {
    auto p = file.GetString("tokenizer.ggml.pre");
    if (!p.ok()) return fail(p.status());
    auto type = PreTokenizerFromName(*p);
    if (type.ok()) {
      data.pre = *type;
      data.ignore_merges = *type == PreTokenizer::kLlama3;
    } else {
      // Old conversions say "default"; other models name their own. Either way the split may
      // differ from the model's training: say so loudly rather than fail or guess silently.
      data.warnings.push_back(fmt::format(
          "{}: tokenizer.ggml.pre is \"{}\", which herd does not know ({}); using Llama 3's "
          "pre-tokenizer, so token ids may differ from what the model was trained on — "
          "re-convert the file with a current llama.cpp",
          path, *p, type.status().message()));
    }
  } else {
    data.warnings.push_back(path +
                            ": no tokenizer.ggml.pre (a GGUF converted before llama.cpp recorded "
                            "pre-tokenizers); assuming Llama 3's, which may not be the model's");
  }
  for (const char* key : {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id"}) {
    if (!file.Find(key)) continue;
    auto v = file.GetUint(key);
    if (!v.ok()) return fail(v.status());
    if (*v >= n) return Status::Errorf("{}: {} = {} is out of range", path, key, *v);
    (std::string_view(key).find("bos") != std::string_view::npos ? data.bos_id : data.eos_id) =
        static_cast<int32_t>(*v);
  }
  return data;
}

}  // namespace herd
