// safetensors reader (Hugging Face's format for weights;
// https://github.com/huggingface/safetensors).
//
// File layout:
//   u64 N                little-endian length of the header
//   N bytes              UTF-8 JSON object, possibly padded with trailing spaces:
//                          {"<tensor name>": {"dtype": "BF16", "shape": [4096, 14336],
//                                             "data_offsets": [begin, end]},
//                           ...,
//                           "__metadata__": {"<key>": "<string value>", ...}}   (optional)
//   data buffer          the rest of the file; each tensor is bytes [begin, end) of it, row-major,
//                        little-endian, with end - begin == numel * dtype size.
// dtypes read: F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL. Others (F8_E4M3, U16, ...) are errors
// naming the tensor, so a caller never gets bytes it would misread.
//
// A sharded checkpoint is a directory with model.safetensors.index.json:
//   {"metadata": {...}, "weight_map": {"<tensor name>": "model-00001-of-00002.safetensors", ...}}
//
// Tensor data pointers point into the memory-mapped file (zero copy); the index keeps it alive.
// Tensors appear in the index in data-offset order (the order of the bytes in the file).
// Note: safetensors does not align tensors beyond the 8-byte aligned start of the data buffer, so a
// data pointer is only as aligned as its begin offset makes it.
#pragma once

#include <memory>
#include <string>

#include "base/status.h"
#include "io/tensor_index.h"

namespace herd {

// Reads one .safetensors file.
Result<TensorIndex> LoadSafetensors(const std::string& path);

// Appends the tensors of one .safetensors file to *index (for shards). Either every tensor of the
// file is added or, on error, none is; a name already in the index is an error.
Status AddSafetensors(const std::string& path, TensorIndex* index);

// Reads a model directory: the shards listed in model.safetensors.index.json if it exists (every
// shard it references must exist and hold the tensors the weight_map assigns to it; extra tensors
// in a shard are accepted), else model.safetensors.
Result<TensorIndex> LoadSafetensorsDir(const std::string& dir);

// Parses safetensors bytes already in memory (for the fuzzer and tests); `name` is used in
// messages and as TensorEntry::file. The index keeps `bytes` alive.
Result<TensorIndex> ParseSafetensors(std::shared_ptr<const std::string> bytes,
                                     const std::string& name);

}  // namespace herd
