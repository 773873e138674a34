#include "tokenizer/export.h"

#include <algorithm>
#include <bit>
#include <functional>
#include <nlohmann/json.hpp>
#include <string_view>

#include "tokenizer/load.h"

namespace herd {

namespace {

using nlohmann::json;
using nlohmann::ordered_json;

TokenType TypeOf(const TokenizerData& data, size_t id) {
  return id < data.types.size() ? data.types[id] : TokenType::kNormal;  // no types: all normal
}

bool ValidId(const TokenizerData& data, int32_t id) {
  return id >= 0 && static_cast<size_t>(id) < data.tokens.size();
}

// Tokens that take part in BPE (model.vocab in tokenizer.json); the rest are added tokens.
bool IsMergeable(TokenType t) { return t == TokenType::kNormal || t == TokenType::kByte; }

// Token text as the formats store it: byte-level alphabet for BPE tokens, literal otherwise.
std::string TokenText(const TokenizerData& data, size_t id) {
  return IsMergeable(TypeOf(data, id)) ? ByteToUnicode(data.tokens[id]) : data.tokens[id];
}

std::vector<std::string> TokenTexts(const TokenizerData& data) {
  std::vector<std::string> out(data.tokens.size());
  for (size_t id = 0; id < data.tokens.size(); ++id) out[id] = TokenText(data, id);
  return out;
}

std::vector<std::string> MergeStrings(const TokenizerData& data,
                                      const std::vector<std::string>& texts) {
  std::vector<std::string> out;
  const auto merges = MergesFromRanks(data);
  out.reserve(merges.size());
  for (auto [a, b] : merges) out.push_back(texts[a] + " " + texts[b]);
  return out;
}

// Meta's Llama 3 pattern, as its tokenizer.json writes it (PreTokenizerFromRegex accepts it).
constexpr const char* kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// A JSON string literal (invalid UTF-8 in a literal token becomes U+FFFD).
std::string Quote(const std::string& s) {
  return json(s).dump(-1, ' ', false, json::error_handler_t::replace);
}

// `items` as the body of a JSON object or array nested at depth 2 (inside "model"), one per line.
std::string NestedBlock(const std::vector<std::string>& items, char open, char close) {
  if (items.empty()) return {open, close};
  size_t size = 16;
  for (const auto& s : items) size += s.size() + 8;
  std::string out;
  out.reserve(size);
  out += open;
  for (size_t i = 0; i < items.size(); ++i) {
    out += i ? ",\n      " : "\n      ";
    out += items[i];
  }
  out += "\n    ";
  out += close;
  return out;
}

void ReplaceLast(std::string* text, const std::string& placeholder, const std::string& with) {
  const size_t at = text->rfind(Quote(placeholder));
  if (at != std::string::npos) text->replace(at, Quote(placeholder).size(), with);
}

ordered_json ByteLevel(bool add_prefix_space, bool trim_offsets, bool use_regex) {
  return {{"type", "ByteLevel"},
          {"add_prefix_space", add_prefix_space},
          {"trim_offsets", trim_offsets},
          {"use_regex", use_regex}};
}

// The pre_tokenizer section HF tokenizers reads back as the same PreTokenizer (see load_hf.cc).
ordered_json PreTokenizerJson(PreTokenizer pre) {
  switch (pre) {
    case PreTokenizer::kGpt2:  // ByteLevel's built-in regex is GPT-2's
      return ByteLevel(false, true, true);
    case PreTokenizer::kSmolLM:
      return {{"type", "Sequence"},
              {"pretokenizers",
               {{{"type", "Digits"}, {"individual_digits", true}}, ByteLevel(false, true, true)}}};
    case PreTokenizer::kLlama3:
      break;
  }
  return {{"type", "Sequence"},
          {"pretokenizers",
           {{{"type", "Split"},
             {"pattern", {{"Regex", kLlama3Pattern}}},
             {"behavior", "Isolated"},
             {"invert", false}},
            ByteLevel(false, true, false)}}};
}

ordered_json PostProcessor(const TokenizerData& data) {
  ordered_json byte_level = ByteLevel(true, false, true);
  if (!ValidId(data, data.bos_id)) return byte_level;
  const std::string bos = TokenText(data, data.bos_id);
  auto special = [&](int type_id) {
    return ordered_json{{"SpecialToken", {{"id", bos}, {"type_id", type_id}}}};
  };
  auto sequence = [](const char* id, int type_id) {
    return ordered_json{{"Sequence", {{"id", id}, {"type_id", type_id}}}};
  };
  ordered_json tokens;
  tokens[bos] = {{"id", bos}, {"ids", {data.bos_id}}, {"tokens", {bos}}};
  ordered_json tp = {
      {"type", "TemplateProcessing"},
      {"single", {special(0), sequence("A", 0)}},
      {"pair", {special(0), sequence("A", 0), special(1), sequence("B", 1)}},
      {"special_tokens", tokens},
  };
  return {{"type", "Sequence"}, {"processors", {byte_level, tp}}};
}

}  // namespace

std::vector<std::pair<int32_t, int32_t>> MergesFromRanks(const TokenizerData& data) {
  if (!data.merges.empty()) return data.merges;
  const size_t n = data.tokens.size();
  // Open-addressing table of the BPE tokens by bytes: (hash, id) slots, 8 bytes each, so the
  // ~800k lookups for Llama 3 mostly stay in cache (std::unordered_map is 2-3x slower here).
  struct Slot {
    uint32_t hash;
    int32_t id;  // -1: empty
  };
  std::vector<Slot> table(std::bit_ceil(std::max<size_t>(16, n * 2)), Slot{0, -1});
  const size_t mask = table.size() - 1;
  // The slot holding s, or the empty slot where it would go.
  auto slot_of = [&](std::string_view s, uint32_t* tag) -> Slot& {
    const size_t h = std::hash<std::string_view>{}(s);
    *tag = static_cast<uint32_t>(h >> 32);
    for (size_t i = h & mask;; i = (i + 1) & mask) {
      Slot& slot = table[i];
      if (slot.id < 0 || (slot.hash == *tag && data.tokens[slot.id] == s)) return slot;
    }
  };
  auto id_of = [&](std::string_view s) {
    uint32_t tag;
    return slot_of(s, &tag).id;
  };
  for (size_t id = 0; id < n; ++id) {
    if (!IsMergeable(TypeOf(data, id))) continue;
    uint32_t tag;
    Slot& slot = slot_of(data.tokens[id], &tag);
    if (slot.id < 0) slot = {tag, static_cast<int32_t>(id)};  // repeated bytes: first id stays
  }
  std::vector<std::pair<int32_t, int32_t>> merges;
  merges.reserve(n * 3);
  // Ranks are ids, so visiting ids in order yields merges ordered by rank.
  for (size_t id = 0; id < n; ++id) {
    if (!IsMergeable(TypeOf(data, id))) continue;
    const std::string_view t = data.tokens[id];
    const size_t first = merges.size();
    for (size_t k = 1; k < t.size(); ++k) {
      const int32_t a = id_of(t.substr(0, k));
      if (a < 0) continue;
      const int32_t b = id_of(t.substr(k));
      if (b >= 0) merges.emplace_back(a, b);
    }
    std::sort(merges.begin() + first, merges.end());
  }
  return merges;
}

void AddGgufTokenizerMetadata(const TokenizerData& data, gguf::Writer* writer) {
  const std::vector<std::string> texts = TokenTexts(data);
  std::vector<int32_t> types(data.tokens.size());
  for (size_t id = 0; id < types.size(); ++id) types[id] = static_cast<int32_t>(TypeOf(data, id));
  writer->SetString("tokenizer.ggml.model", "gpt2");
  writer->SetString("tokenizer.ggml.pre", PreTokenizerName(data.pre));
  writer->SetStringArray("tokenizer.ggml.tokens", texts);
  writer->SetInt32Array("tokenizer.ggml.token_type", types);
  writer->SetStringArray("tokenizer.ggml.merges", MergeStrings(data, texts));
  if (ValidId(data, data.bos_id)) writer->SetUint32("tokenizer.ggml.bos_token_id", data.bos_id);
  if (ValidId(data, data.eos_id)) writer->SetUint32("tokenizer.ggml.eos_token_id", data.eos_id);
  writer->SetBool("tokenizer.ggml.add_bos_token", ValidId(data, data.bos_id));
  writer->SetBool("tokenizer.ggml.add_eos_token", false);
}

std::string HfTokenizerJson(const TokenizerData& data) {
  const std::vector<std::string> texts = TokenTexts(data);
  ordered_json added = ordered_json::array();
  std::vector<std::string> vocab;
  vocab.reserve(texts.size());
  for (size_t id = 0; id < texts.size(); ++id) {
    const TokenType t = TypeOf(data, id);
    if (IsMergeable(t)) {
      vocab.push_back(Quote(texts[id]) + ": " + std::to_string(id));
      continue;
    }
    added.push_back({{"id", id},
                     {"content", texts[id]},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", t != TokenType::kUserDefined}});
  }
  std::vector<std::string> merges = MergeStrings(data, texts);
  for (auto& m : merges) m = Quote(m);

  // vocab and merges are large: placeholders here, written line by line below.
  const std::string kVocab = "@herd:vocab@", kMerges = "@herd:merges@";
  ordered_json root = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", added},
      {"normalizer", nullptr},
      {"pre_tokenizer", PreTokenizerJson(data.pre)},
      {"post_processor", PostProcessor(data)},
      {"decoder", ByteLevel(true, true, true)},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", nullptr},
        {"continuing_subword_prefix", nullptr},
        {"end_of_word_suffix", nullptr},
        {"fuse_unk", false},
        {"byte_fallback", false},
        // tiktoken ranks always match whole tokens first.
        {"ignore_merges", data.merges.empty() || data.ignore_merges},
        {"vocab", kVocab},
        {"merges", kMerges}}},
  };
  std::string out = root.dump(2, ' ', false, json::error_handler_t::replace);
  ReplaceLast(&out, kMerges, NestedBlock(merges, '[', ']'));
  ReplaceLast(&out, kVocab, NestedBlock(vocab, '{', '}'));
  out += '\n';
  return out;
}

std::string HfTokenizerConfigJson(const TokenizerData& data, const std::string& chat_template) {
  json config;  // keys sorted, as transformers writes them
  json decoder = json::object();
  for (size_t id = 0; id < data.tokens.size(); ++id) {
    const TokenType t = TypeOf(data, id);
    if (IsMergeable(t)) continue;
    decoder[std::to_string(id)] = {
        {"content", data.tokens[id]}, {"lstrip", false},
        {"normalized", false},        {"rstrip", false},
        {"single_word", false},       {"special", t != TokenType::kUserDefined}};
  }
  config["added_tokens_decoder"] = std::move(decoder);
  if (ValidId(data, data.bos_id)) config["bos_token"] = TokenText(data, data.bos_id);
  if (ValidId(data, data.eos_id)) config["eos_token"] = TokenText(data, data.eos_id);
  if (!chat_template.empty()) config["chat_template"] = chat_template;
  config["clean_up_tokenization_spaces"] = false;
  config["model_input_names"] = {"input_ids", "attention_mask"};
  config["model_max_length"] = 131072;
  config["tokenizer_class"] = "PreTrainedTokenizerFast";
  return config.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

}  // namespace herd
