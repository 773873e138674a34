// Writing a tokenizer in the forms other tools load: GGUF metadata (llama.cpp) and a Hugging Face
// tokenizer.json + tokenizer_config.json (transformers' PreTrainedTokenizerFast / AutoTokenizer).
// The output is laid out like the files Meta and llama.cpp's converter publish for Llama 3.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "io/gguf_writer.h"
#include "tokenizer/tokenizer.h"

namespace herd {

// BPE merges equivalent to tiktoken's ranks (for formats that need a merge list: GGUF,
// tokenizer.json), derived the way Hugging Face's TikTokenConverter does: for each normal token T
// of rank r (= id; length >= 2), every split of T into two normal tokens is a merge of rank r;
// merges are ordered by r, then by (rank of left, rank of right). The pieces' ranks are not
// required to be < r: tiktoken ranks a pair by its concatenation alone, so a pair whose piece was
// formed later (e.g. " " + "   " -> "    ") still merges at r. For Meta's Llama 3 vocabulary this
// gives its published 280,147 merges. If data.merges is already non-empty, returns it unchanged.
std::vector<std::pair<int32_t, int32_t>> MergesFromRanks(const TokenizerData& data);

// Writes tokenizer.ggml.* metadata as llama.cpp's converter does for Llama 3: model "gpt2", pre
// (PreTokenizerName(data.pre), "llama-bpe"), tokens (byte-level-alphabet text for normal tokens,
// literal text for control / user-defined ones), token_type, merges ("a b"), bos/eos_token_id
// (when set), add_bos_token true, add_eos_token false. Architecture keys and
// tokenizer.chat_template are the caller's.
void AddGgufTokenizerMetadata(const TokenizerData& data, gguf::Writer* writer);

// Hugging Face tokenizer.json: BPE over the byte-level alphabet (vocab = normal tokens, merges as
// MergesFromRanks, as "a b" strings), ignore_merges, Llama 3's pre-tokenizer
// Sequence[Split(regex, Isolated), ByteLevel(use_regex false)], ByteLevel decoder, added_tokens for
// the other tokens (control: special true), and a post-processor that prepends the BOS token
// (ByteLevel + TemplateProcessing, as in Meta's file).
std::string HfTokenizerJson(const TokenizerData& data);
// tokenizer_config.json: bos_token, eos_token, model_max_length (131072),
// clean_up_tokenization_spaces false, tokenizer_class "PreTrainedTokenizerFast", model_input_names
// and chat_template (omitted when empty).
std::string HfTokenizerConfigJson(const TokenizerData& data, const std::string& chat_template);

}  // namespace herd
