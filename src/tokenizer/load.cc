#include "tokenizer/load.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "io/mapped_file.h"

namespace herd {

namespace fs = std::filesystem;

namespace {
// Meta's Llama 3 pattern, as written in tokenizer.json and llama-models.
constexpr std::string_view kLlama3Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// GPT-2's pattern: as in OpenAI's encoder.py and Hugging Face's ByteLevel (the form a Split
// pre-tokenizer would carry), and tiktoken's equivalent rewrite of it for "gpt2" / "r50k_base".
constexpr std::string_view kGpt2Regexes[] = {
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)",
    R"('(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s)",
};

// tokenizer_config.json: "bos_token" / "eos_token" as a string or {"content": ...}.
void ApplyTokenizerConfig(const fs::path& config, TokenizerData* data) {
  auto text = ReadFileToString(config.string());
  if (!text.ok()) return;
  auto root = nlohmann::json::parse(*text, nullptr, false);
  if (root.is_discarded() || !root.is_object()) {
    data->warnings.push_back(config.string() + ": not valid JSON; ignored");
    return;
  }
  auto token_text = [&](const char* key) -> std::optional<std::string> {
    if (!root.contains(key)) return std::nullopt;
    const auto& v = root[key];
    if (v.is_string()) return v.get<std::string>();
    if (v.is_object() && v.contains("content") && v["content"].is_string())
      return v["content"].get<std::string>();
    return std::nullopt;
  };
  for (auto [key, slot] : {std::pair{"bos_token", &data->bos_id}, {"eos_token", &data->eos_id}}) {
    auto t = token_text(key);
    if (!t) continue;
    for (size_t id = 0; id < data->tokens.size(); ++id)
      if (data->types[id] != TokenType::kNormal && data->tokens[id] == *t)
        *slot = static_cast<int32_t>(id);
  }
}

bool StartsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

}  // namespace

Result<PreTokenizer> PreTokenizerFromName(std::string_view name) {
  if (name == "llama-bpe" || name == "llama3" || name == "llama-v3") return PreTokenizer::kLlama3;
  if (name == "gpt-2" || name == "gpt2") return PreTokenizer::kGpt2;
  if (name == "smollm") return PreTokenizer::kSmolLM;
  return Status::Errorf("unknown pre-tokenizer \"{}\" (supported: llama-bpe, gpt-2, smollm)", name);
}

Result<PreTokenizer> PreTokenizerFromRegex(std::string_view regex) {
  if (regex == kLlama3Regex) return PreTokenizer::kLlama3;
  for (std::string_view r : kGpt2Regexes)
    if (regex == r) return PreTokenizer::kGpt2;
  return Status::Errorf("unsupported pre-tokenizer regex: {}", regex.substr(0, 120));
}

Result<TokenizerData> LoadTokenizerData(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    const fs::path dir(path);
    for (const char* name : {"tokenizer.json", "tokenizer.model"})
      if (fs::exists(dir / name)) return LoadTokenizerData((dir / name).string());
    for (const auto& entry : fs::directory_iterator(dir, ec))
      if (entry.path().extension() == ".gguf") return LoadTokenizerData(entry.path().string());
    return Status::Errorf("{}: directory has no tokenizer.json, tokenizer.model or .gguf file",
                          path);
  }
  HERD_ASSIGN_OR_RETURN(auto file, MappedFile::Open(path));
  const std::string_view head = file->view().substr(0, 64);
  if (StartsWith(head, "GGUF")) return LoadGgufTokenizer(path);
  const size_t first = head.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos && head[first] == '{') {
    HERD_ASSIGN_OR_RETURN(auto data, ParseHfTokenizerJson(file->view(), path));
    const fs::path config = fs::path(path).parent_path() / "tokenizer_config.json";
    if (fs::exists(config, ec)) ApplyTokenizerConfig(config, &data);
    return data;
  }
  if (file->size() == 0) return Status::Errorf("{}: empty file", path);
  return ParseTiktoken(file->view(), path);
}

Result<Tokenizer> LoadTokenizer(const std::string& path) {
  HERD_ASSIGN_OR_RETURN(auto data, LoadTokenizerData(path));
  return Tokenizer::Create(std::move(data));
}

}  // namespace herd
