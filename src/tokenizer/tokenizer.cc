#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <unordered_map>

#include "base/thread_pool.h"
#include "tokenizer/bpe.h"

namespace herd {

struct Tokenizer::Impl {
  TokenizerData data;
  Bpe bpe;
  std::unordered_map<std::string, int32_t> specials;  // text -> id, control and user-defined tokens
};

Result<Tokenizer> Tokenizer::Create(TokenizerData data) {
  const size_t n = data.tokens.size();
  if (n == 0) return Status::Errorf("{}: empty vocabulary", data.source);
  if (n > size_t{1} << 30) return Status::Errorf("{}: vocabulary too large ({})", data.source, n);
  if (data.types.empty()) data.types.assign(n, TokenType::kNormal);
  if (data.types.size() != n)
    return Status::Errorf("{}: {} token types for {} tokens", data.source, data.types.size(), n);
  auto check_id = [&](int32_t id, const char* what) -> Status {
    if (id < -1 || id >= static_cast<int64_t>(n))
      return Status::Errorf("{}: {} id {} out of range [0, {})", data.source, what, id, n);
    return Status::Ok();
  };
  HERD_RETURN_IF_ERROR(check_id(data.bos_id, "bos"));
  HERD_RETURN_IF_ERROR(check_id(data.eos_id, "eos"));

  auto impl = std::make_shared<Impl>();
  std::vector<bool> mergeable(n);
  for (size_t id = 0; id < n; ++id) {
    const TokenType t = data.types[id];
    mergeable[id] = t == TokenType::kNormal || t == TokenType::kByte;
    if ((t == TokenType::kControl || t == TokenType::kUserDefined) && !data.tokens[id].empty())
      impl->specials.emplace(data.tokens[id], static_cast<int32_t>(id));
  }
  auto bpe = Bpe::Create(data.tokens, mergeable, data.merges, data.ignore_merges);
  if (!bpe.ok()) return Status::Errorf("{}: {}", data.source, bpe.status().message());
  impl->bpe = std::move(bpe).value();
  impl->data = std::move(data);
  Tokenizer tok;
  tok.impl_ = std::move(impl);
  return tok;
}

void Tokenizer::EncodeOrdinary(std::string_view text, std::vector<int32_t>* out) const {
  const Bpe& bpe = impl_->bpe;
  Split(impl_->data.pre, text, [&](size_t b, size_t e) { bpe.Encode(text.substr(b, e - b), out); });
}

std::vector<int32_t> Tokenizer::Encode(std::string_view text, const EncodeOptions& options) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 2);
  if (options.add_bos && impl_->data.bos_id >= 0) out.push_back(impl_->data.bos_id);
  const bool any_special = options.allow_all_special || !options.allowed_special.empty();
  if (!any_special || impl_->specials.empty()) {
    EncodeOrdinary(text, &out);
    return out;
  }
  // Allowed special tokens split the text; between them, ordinary encoding. At each position the
  // longest allowed special token wins (Llama 3's are never prefixes of one another).
  std::vector<std::pair<std::string_view, int32_t>> allowed;
  for (const auto& [s, id] : impl_->specials) {
    if (options.allow_all_special ||
        std::find(options.allowed_special.begin(), options.allowed_special.end(), s) !=
            options.allowed_special.end())
      allowed.emplace_back(s, id);
  }
  std::sort(allowed.begin(), allowed.end(),
            [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  bool first_byte[256] = {};
  for (const auto& [s, id] : allowed) first_byte[static_cast<uint8_t>(s[0])] = true;
  size_t seg = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (!first_byte[static_cast<uint8_t>(text[i])]) continue;
    for (const auto& [s, id] : allowed) {
      if (text.compare(i, s.size(), s) == 0) {
        EncodeOrdinary(text.substr(seg, i - seg), &out);
        out.push_back(id);
        i += s.size() - 1;
        seg = i + 1;
        break;
      }
    }
  }
  EncodeOrdinary(text.substr(seg), &out);
  return out;
}

std::vector<std::vector<int32_t>> Tokenizer::EncodeBatch(std::span<const std::string_view> texts,
                                                         const EncodeOptions& options,
                                                         ThreadPool* pool) const {
  std::vector<std::vector<int32_t>> out(texts.size());
  std::unique_ptr<ThreadPool> own;
  if (!pool) pool = (own = std::make_unique<ThreadPool>()).get();
  pool->ParallelFor(texts.size(), [&](size_t i, int) { out[i] = Encode(texts[i], options); });
  return out;
}

Result<std::string> Tokenizer::Decode(std::span<const int32_t> ids) const {
  std::string out;
  const auto& tokens = impl_->data.tokens;
  for (size_t i = 0; i < ids.size(); ++i) {
    const int32_t id = ids[i];
    if (id < 0 || static_cast<size_t>(id) >= tokens.size())
      return Status::Errorf("token id {} at position {} is out of range [0, {})", id, i,
                            tokens.size());
    out += tokens[id];
  }
  return out;
}

std::string_view Tokenizer::TokenBytes(int32_t id) const { return impl_->data.tokens.at(id); }
int32_t Tokenizer::vocab_size() const { return static_cast<int32_t>(impl_->data.tokens.size()); }
TokenType Tokenizer::token_type(int32_t id) const { return impl_->data.types.at(id); }
bool Tokenizer::IsSpecial(int32_t id) const {
  const TokenType t = token_type(id);
  return t == TokenType::kControl || t == TokenType::kUserDefined;
}
std::optional<int32_t> Tokenizer::SpecialId(std::string_view text) const {
  auto it = impl_->specials.find(std::string(text));
  if (it == impl_->specials.end()) return std::nullopt;
  return it->second;
}
int32_t Tokenizer::bos_id() const { return impl_->data.bos_id; }
int32_t Tokenizer::eos_id() const { return impl_->data.eos_id; }
PreTokenizer Tokenizer::pre_tokenizer() const { return impl_->data.pre; }
const std::string& Tokenizer::source() const { return impl_->data.source; }
const std::vector<std::string>& Tokenizer::warnings() const { return impl_->data.warnings; }

}  // namespace herd
