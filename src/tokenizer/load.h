// Tokenizer loaders, one per file format, all producing TokenizerData (see tokenizer.h), and
// LoadTokenizer which picks the loader from the file's content.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "tokenizer/tokenizer.h"

namespace herd {

// The 256 special tokens Meta appends after Llama 3's 128,000 ranks (ids 128000..128255), in order.
std::vector<std::string> Llama3SpecialTokens();

// tiktoken BPE file: one "<base64 token bytes> <rank>" per line, ranks 0..n-1. The Llama 3 special
// tokens follow at ids n..n+255. `source` names the file in errors.
Result<TokenizerData> ParseTiktoken(std::string_view contents, const std::string& source);
// Hugging Face tokenizer.json (model.type BPE with the byte-level alphabet).
Result<TokenizerData> ParseHfTokenizerJson(std::string_view contents, const std::string& source);
// GGUF metadata tokenizer.ggml.* (model "gpt2").
Result<TokenizerData> LoadGgufTokenizer(const std::string& path);

// Loads a tokenizer from: a tiktoken tokenizer.model, a tokenizer.json, a .gguf file, or a model
// directory holding one of them (tokenizer.json preferred, then tokenizer.model, then one *.gguf).
// A tokenizer_config.json next to a tokenizer.json supplies bos/eos.
Result<Tokenizer> LoadTokenizer(const std::string& path);
Result<TokenizerData> LoadTokenizerData(const std::string& path);

// GPT-2's byte-level alphabet: 256 bytes <-> 256 printable code points.
std::string ByteToUnicode(std::string_view bytes);
// Inverse; error when a character is outside the alphabet.
Result<std::string> UnicodeToByte(std::string_view text);

// Recognises a pre-tokenizer by its GGUF name ("llama-bpe", "llama3", ...) or its regex.
Result<PreTokenizer> PreTokenizerFromName(std::string_view name);
Result<PreTokenizer> PreTokenizerFromRegex(std::string_view regex);

}  // namespace herd
