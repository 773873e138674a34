// Hugging Face tokenizer.json, BPE models over the byte-level alphabet:
//   model: {type: "BPE", vocab: {token: id}, merges: ["a b", ...] or [["a", "b"], ...],
//           ignore_merges}
//   added_tokens: [{id, content, special}, ...]
//   pre_tokenizer: one of
//     Sequence[Split(regex), ByteLevel(use_regex false)]   the regex names it (Llama 3, GPT-2)
//     ByteLevel(add_prefix_space false, use_regex true)     GPT-2
//     Sequence[Digits(individual_digits true), ByteLevel(add_prefix_space false, use_regex true)]
//                                                           SmolLM2
#include <nlohmann/json.hpp>

#include "tokenizer/load.h"

namespace herd {

namespace {

using nlohmann::json;

// One-line description of a pre_tokenizer section, for messages: types with their scalar
// settings, e.g. "Sequence[Digits(individual_digits=false), ByteLevel(add_prefix_space=false)]".
std::string Describe(const json& pre) {
  if (!pre.is_object()) return pre.dump();
  const std::string type = pre.value("type", "?");
  std::string out = type;
  if (type == "Sequence" && pre.contains("pretokenizers") && pre["pretokenizers"].is_array()) {
    out += '[';
    for (size_t i = 0; i < pre["pretokenizers"].size(); ++i)
      out += (i ? ", " : "") + Describe(pre["pretokenizers"][i]);
    return out + ']';
  }
  std::string args;
  for (const auto& [key, value] : pre.items()) {
    if (key == "type") continue;
    const std::string v = value.is_object() && value.size() == 1 && value.begin()->is_string()
                              ? value.begin()->get<std::string>()  // {"Regex": "..."}
                              : value.dump();
    args += (args.empty() ? "" : ", ") + key + "=" + v;
  }
  return args.empty() ? out : out + "(" + args + ")";
}

std::string Truncated(std::string s) {
  if (s.size() > 240) s = s.substr(0, 240) + "...";
  return s;
}

bool IsType(const json& p, std::string_view type) {
  return p.is_object() && p.contains("type") && p["type"].is_string() &&
         p["type"].get<std::string>() == type;
}

// A boolean setting; `absent` when missing (Hugging Face's serde default).
bool Flag(const json& p, const char* key, bool absent) {
  return p.contains(key) && p[key].is_boolean() ? p[key].get<bool>() : absent;
}

// ByteLevel that splits with GPT-2's regex (use_regex defaults to true) and adds no prefix space.
bool IsGpt2ByteLevel(const json& p) {
  return IsType(p, "ByteLevel") && Flag(p, "use_regex", true) &&
         !Flag(p, "add_prefix_space", false);
}

// The steps of the section: a Sequence's pretokenizers, or the section itself.
std::vector<json> Steps(const json& pre) {
  if (IsType(pre, "Sequence") && pre.contains("pretokenizers") && pre["pretokenizers"].is_array())
    return pre["pretokenizers"].get<std::vector<json>>();
  return {pre};
}

// The pre-tokenizer a pre_tokenizer section asks for; nullopt (with a warning) when it is none
// herd knows and has no regex (Llama 3's is used then, as before); an error for a regex split that
// herd does not implement.
Result<std::optional<PreTokenizer>> PreTokenizerOf(const json& pre, const std::string& source,
                                                   std::vector<std::string>* warnings) {
  const std::vector<json> steps = Steps(pre);
  const std::string found = Truncated(Describe(pre));
  // Sequence[Split(regex), ByteLevel(use_regex false)]: the regex names the pre-tokenizer.
  for (const json& p : steps) {
    if (!IsType(p, "Split")) continue;
    if (!p.contains("pattern") || !p["pattern"].is_object() || !p["pattern"].contains("Regex") ||
        !p["pattern"]["Regex"].is_string())
      break;
    auto type = PreTokenizerFromRegex(p["pattern"]["Regex"].get<std::string>());
    if (!type.ok()) return Status::Errorf("{}: {}", source, type.status().message());
    for (const json& q : steps)
      if (IsType(q, "ByteLevel") && Flag(q, "use_regex", true))
        warnings->push_back(fmt::format(
            "{}: pre_tokenizer {} splits again with ByteLevel's GPT-2 regex (use_regex true); "
            "herd splits with the Split regex only, so token ids may differ",
            source, found));
    return std::optional<PreTokenizer>(*type);
  }
  if (steps.size() == 1 && IsGpt2ByteLevel(steps[0]))
    return std::optional<PreTokenizer>(PreTokenizer::kGpt2);
  if (steps.size() == 2 && IsType(steps[0], "Digits") &&
      Flag(steps[0], "individual_digits", false) && IsGpt2ByteLevel(steps[1]))
    return std::optional<PreTokenizer>(PreTokenizer::kSmolLM);
  for (const json& p : steps)
    if (IsType(p, "ByteLevel") && Flag(p, "use_regex", true))
      return Status::Errorf(
          "{}: unsupported pre_tokenizer {} (supported with ByteLevel's regex: "
          "ByteLevel(add_prefix_space=false), "
          "Sequence[Digits(individual_digits=true), ByteLevel(add_prefix_space=false)])",
          source, found);
  warnings->push_back(fmt::format(
      "{}: pre_tokenizer {} is none herd knows and has no Split regex; using Llama 3's pattern, "
      "so token ids may differ from the model's",
      source, found));
  return std::optional<PreTokenizer>();
}

Result<TokenizerData> ParseJson(const json& root, const std::string& source) {
  TokenizerData data;
  data.source = source;
  if (!root.is_object() || !root.contains("model") || !root["model"].is_object())
    return Status::Errorf("{}: no \"model\" object", source);
  const json& model = root["model"];
  const std::string type = model.value("type", "BPE");
  if (type != "BPE")
    return Status::Errorf("{}: model type \"{}\" is not supported (BPE only)", source, type);
  if (!model.contains("vocab") || !model["vocab"].is_object())
    return Status::Errorf("{}: model.vocab must be an object", source);

  // Ids may come from the vocab and from added_tokens; together they must cover 0..n-1.
  std::vector<std::optional<std::string>> tokens;
  std::vector<TokenType> types;
  auto put = [&](int64_t id, std::string bytes, TokenType t, std::string_view what) -> Status {
    if (id < 0 || id >= (1 << 24))
      return Status::Errorf("{}: {} id {} out of range", source, what, id);
    if (static_cast<size_t>(id) >= tokens.size()) {
      tokens.resize(id + 1);
      types.resize(id + 1, TokenType::kNormal);
    }
    if (tokens[id] && t == TokenType::kNormal)
      return Status::Errorf("{}: id {} assigned twice in {}", source, id, what);
    tokens[id] = std::move(bytes);
    types[id] = t;
    return Status::Ok();
  };
  for (const auto& [text, id] : model["vocab"].items()) {
    if (!id.is_number_integer())
      return Status::Errorf("{}: vocab entry '{}' has a non-integer id", source, text);
    auto bytes = UnicodeToByte(text);
    if (!bytes.ok())
      return Status::Errorf("{}: vocab token '{}': {}", source, text, bytes.status().message());
    HERD_RETURN_IF_ERROR(
        put(id.get<int64_t>(), std::move(bytes).value(), TokenType::kNormal, "model.vocab"));
  }
  if (root.contains("added_tokens") && root["added_tokens"].is_array()) {
    for (const auto& a : root["added_tokens"]) {
      if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer() ||
          !a.contains("content") || !a["content"].is_string())
        return Status::Errorf("{}: malformed added_tokens entry {}", source,
                              a.dump().substr(0, 80));
      const TokenType t = a.value("special", false) ? TokenType::kControl : TokenType::kUserDefined;
      HERD_RETURN_IF_ERROR(
          put(a["id"].get<int64_t>(), a["content"].get<std::string>(), t, "added_tokens"));
    }
  }
  for (size_t id = 0; id < tokens.size(); ++id)
    if (!tokens[id])
      return Status::Errorf("{}: no token has id {} (ids must be 0..n-1)", source, id);
  for (auto& t : tokens) data.tokens.push_back(std::move(*t));
  data.types = std::move(types);

  // Merges, by token id.
  std::unordered_map<std::string, int32_t> id_of;
  for (const auto& [text, id] : model["vocab"].items()) id_of.emplace(text, id.get<int32_t>());
  if (model.contains("merges") && model["merges"].is_array()) {
    const json& merges = model["merges"];
    data.merges.reserve(merges.size());
    for (size_t r = 0; r < merges.size(); ++r) {
      std::string a, b;
      const json& m = merges[r];
      if (m.is_string()) {
        const std::string s = m.get<std::string>();
        const size_t sp = s.find(' ');
        if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
          return Status::Errorf("{}: merge {} '{}' is not two tokens", source, r, s);
        a = s.substr(0, sp);
        b = s.substr(sp + 1);
      } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
        a = m[0].get<std::string>();
        b = m[1].get<std::string>();
      } else {
        return Status::Errorf("{}: merge {} is malformed", source, r);
      }
      auto ia = id_of.find(a), ib = id_of.find(b);
      if (ia == id_of.end() || ib == id_of.end())
        return Status::Errorf("{}: merge {} '{} {}' uses a token not in the vocab", source, r, a,
                              b);
      data.merges.emplace_back(ia->second, ib->second);
    }
  }
  if (data.merges.empty()) return Status::Errorf("{}: BPE model has no merges", source);
  data.ignore_merges = model.value("ignore_merges", false);

  // Pre-tokenizer.
  if (root.contains("pre_tokenizer")) {
    HERD_ASSIGN_OR_RETURN(auto pre, PreTokenizerOf(root["pre_tokenizer"], source, &data.warnings));
    if (pre) data.pre = *pre;
  }
  // Llama 3's names; tokenizer_config.json (read by LoadTokenizer) overrides.
  for (int32_t id = 0; id < static_cast<int32_t>(data.tokens.size()); ++id) {
    if (data.types[id] != TokenType::kControl) continue;
    if (data.tokens[id] == "<|begin_of_text|>") data.bos_id = id;
    if (data.tokens[id] == "<|end_of_text|>") data.eos_id = id;
  }
  return data;
}

}  // namespace

Result<TokenizerData> ParseHfTokenizerJson(std::string_view contents, const std::string& source) {
  try {
    return ParseJson(json::parse(contents), source);
  } catch (const json::parse_error& e) {
    return Status::Errorf("{}: invalid JSON at byte {}", source, e.byte);
  } catch (const json::exception& e) {  // a field of an unexpected type
    return Status::Errorf("{}: unexpected tokenizer.json structure: {}", source, e.what());
  }
}

}  // namespace herd
