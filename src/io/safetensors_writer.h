// safetensors writer (Hugging Face's format; the reader and the full layout are in safetensors.h).
//
// File layout written:
//   u64 N                little-endian length of the header, N + 8 a multiple of 8
//   N bytes              JSON, compact, tensors in the order given:
//                          {"__metadata__": {"<key>": "<value>", ...},      (only if non-empty)
//                           "<tensor name>": {"dtype": "BF16", "shape": [4096, 14336],
//                                             "data_offsets": [begin, end]}, ...}
//                        then spaces up to the 8-byte boundary (as the official writer pads)
//   data buffer          the tensors' bytes back to back, in the order given, with no gaps
// dtypes written: F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL; any other (the GGUF block types) is an
// error naming the tensor. 0-d (shape []) and empty (a 0 dim) tensors are fine. Names must be
// unique, valid UTF-8 and not "__metadata__".
//
// The file is streamed to PATH.tmp, which is renamed to PATH at the end: tensor bytes are never
// copied in memory, and a failed write leaves neither PATH.tmp nor a partial PATH.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "base/status.h"
#include "io/tensor_writer.h"

namespace herd {

Status WriteSafetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                        const std::map<std::string, std::string>& metadata = {});

}  // namespace herd
