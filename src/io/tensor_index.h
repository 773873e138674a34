// TensorIndex: what every weights reader produces (safetensors, Meta .pth, GGUF) — tensor name ->
// dtype, shape and bytes. Data pointers point into memory-mapped files (kept alive by the index)
// wherever the file stores the tensor contiguously in the dtype herd reads; readers copy only when
// they must.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/dtype.h"
#include "base/status.h"
#include "io/mapped_file.h"

namespace herd {

struct TensorEntry {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;  // row-major, outermost first (PyTorch order); GGUF dims are reversed
  const uint8_t* data = nullptr;
  uint64_t n_bytes = 0;
  std::string file;  // where it came from, for messages

  int64_t numel() const;
};

class TensorIndex {
 public:
  // Adds a tensor; error if the name is already present (naming both files).
  Status Add(TensorEntry entry);
  const TensorEntry* Find(std::string_view name) const;
  const std::vector<TensorEntry>& entries() const { return entries_; }
  size_t size() const { return entries_.size(); }

  // Keeps a mapped file (or an owned buffer) alive as long as the index.
  void Retain(std::shared_ptr<const void> owner) { owners_.push_back(std::move(owner)); }

 private:
  std::vector<TensorEntry> entries_;
  std::unordered_map<std::string, size_t> by_name_;
  std::vector<std::shared_ptr<const void>> owners_;
};

}  // namespace herd
