// tiktoken BPE files (Meta's Llama 3 tokenizer.model): text, one token per line,
//   <standard base64 of the token's bytes> ' ' <decimal rank> '\n'
// Ranks are the token ids and must be exactly 0..n-1 (Meta's file lists them in order). Special
// tokens are not in the file: Llama 3 defines 256 of them after the ranks (tokenizer.py in
// llama-models).
#include <charconv>
#include <unordered_set>

#include "tokenizer/load.h"

namespace herd {

std::vector<std::string> Llama3SpecialTokens() {
  std::vector<std::string> s = {
      "<|begin_of_text|>",
      "<|end_of_text|>",
      "<|reserved_special_token_0|>",
      "<|reserved_special_token_1|>",
      "<|finetune_right_pad_id|>",
      "<|step_id|>",
      "<|start_header_id|>",
      "<|end_header_id|>",
      "<|eom_id|>",
      "<|eot_id|>",
      "<|python_tag|>",
      "<|image|>",
  };
  for (int i = 2; s.size() < 256; ++i)
    s.push_back("<|reserved_special_token_" + std::to_string(i) + "|>");
  return s;
}

namespace {

int Base64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// Strict standard base64 with '=' padding.
bool DecodeBase64(std::string_view in, std::string* out) {
  if (in.empty() || in.size() % 4 != 0) return false;
  out->clear();
  for (size_t i = 0; i < in.size(); i += 4) {
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = in[i + k];
      if (c == '=' && i + 4 == in.size() && k >= 2) {
        v[k] = 0;
        ++pad;
      } else {
        if (pad) return false;  // data after padding
        v[k] = Base64Value(c);
        if (v[k] < 0) return false;
      }
    }
    const uint32_t w = (v[0] << 18) | (v[1] << 12) | (v[2] << 6) | v[3];
    out->push_back(static_cast<char>(w >> 16));
    if (pad < 2) out->push_back(static_cast<char>((w >> 8) & 0xFF));
    if (pad < 1) out->push_back(static_cast<char>(w & 0xFF));
  }
  return true;
}

}  // namespace

Result<TokenizerData> ParseTiktoken(std::string_view contents, const std::string& source) {
  TokenizerData data;
  data.source = source;
  std::vector<std::string> by_rank;
  std::vector<bool> seen_rank;
  std::unordered_set<std::string> seen_bytes;
  size_t line_no = 0;
  std::string bytes;
  for (size_t pos = 0; pos < contents.size();) {
    size_t eol = contents.find('\n', pos);
    if (eol == std::string_view::npos) eol = contents.size();
    std::string_view line = contents.substr(pos, eol - pos);
    pos = eol + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    const size_t sp = line.find(' ');
    if (sp == std::string_view::npos || line.find(' ', sp + 1) != std::string_view::npos)
      return Status::Errorf("{}:{}: expected '<base64> <rank>'", source, line_no);
    if (!DecodeBase64(line.substr(0, sp), &bytes))
      return Status::Errorf("{}:{}: corrupt base64 '{}'", source, line_no, line.substr(0, sp));
    std::string_view rank_text = line.substr(sp + 1);
    uint64_t rank = 0;
    auto [end, ec] = std::from_chars(rank_text.data(), rank_text.data() + rank_text.size(), rank);
    if (ec != std::errc() || end != rank_text.data() + rank_text.size() || rank >= (1u << 24))
      return Status::Errorf("{}:{}: bad rank '{}'", source, line_no, rank_text);
    if (rank >= by_rank.size()) {
      by_rank.resize(rank + 1);
      seen_rank.resize(rank + 1);
    }
    if (seen_rank[rank])
      return Status::Errorf("{}:{}: rank {} appears twice", source, line_no, rank);
    if (!seen_bytes.insert(bytes).second)
      return Status::Errorf("{}:{}: token bytes appear twice (rank {})", source, line_no, rank);
    seen_rank[rank] = true;
    by_rank[rank] = bytes;
  }
  if (by_rank.empty())
    return Status::Errorf("{}: no tokens (empty or not a tiktoken file)", source);
  for (size_t r = 0; r < by_rank.size(); ++r)
    if (!seen_rank[r])
      return Status::Errorf("{}: rank {} is missing (ranks must be 0..n-1)", source, r);

  const int32_t n_base = static_cast<int32_t>(by_rank.size());
  data.tokens = std::move(by_rank);
  data.types.assign(data.tokens.size(), TokenType::kNormal);
  for (auto& s : Llama3SpecialTokens()) {
    data.tokens.push_back(std::move(s));
    data.types.push_back(TokenType::kControl);
  }
  data.bos_id = n_base;      // <|begin_of_text|>
  data.eos_id = n_base + 1;  // <|end_of_text|>
  data.ignore_merges = true;
  data.pre = PreTokenizer::kLlama3;
  return data;
}

}  // namespace herd
