// GGUF v3 reader (spec: ggml's docs/gguf.md). Layout, all little-endian:
//   magic "GGUF" | u32 version (3; 2 accepted) | u64 n_tensors | u64 n_kv
//   n_kv x { string key | u32 value_type | value }          string = u64 len + bytes (no NUL)
//   n_tensors x { string name | u32 n_dims | u64 dims[n_dims] | u32 ggml_type | u64 offset }
//   padding to general.alignment (default 32) | tensor data (offsets relative to this point)
// Every length, count and offset is validated against the file size before use: a corrupt or
// truncated file gives a Status naming the file, the byte offset and the problem, never a crash.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/status.h"
#include "io/mapped_file.h"

namespace herd::gguf {

enum class ValueType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};
const char* ValueTypeName(ValueType t);

// One metadata value. Scalars are widened; arrays keep their element type. Strings are views into
// the mapped file (valid while the GgufFile lives).
struct Value {
  ValueType type = ValueType::kUint8;
  ValueType elem_type = ValueType::kUint8;  // for arrays
  int64_t i = 0;                            // integer and bool scalars
  uint64_t u = 0;                           // same value, unsigned view
  double f = 0;                             // float scalars
  std::string_view s;                       // string scalar
  // Arrays: exactly one of these is filled, by element type.
  std::vector<int64_t> ints;  // integer / bool arrays (uint64 values above INT64_MAX wrap)
  std::vector<double> floats;
  std::vector<std::string_view> strings;
  uint64_t array_len =
      0;  // element count; also set for arrays of arrays, whose elements are skipped
  size_t array_size() const;
};

// Block layout of a ggml tensor type: `block_size` elements are stored in `type_size` bytes.
struct GgmlTypeInfo {
  const char* name;
  uint32_t block_size;
  uint32_t type_size;
};
// Null for types this reader does not know (their tensors get n_bytes 0).
const GgmlTypeInfo* FindGgmlType(uint32_t ggml_type);

struct TensorInfo {
  std::string_view name;
  std::vector<uint64_t> dims;  // ggml order: dims[0] is the contiguous (row) dimension
  uint32_t ggml_type = 0;
  uint64_t offset = 0;  // relative to data start
  const uint8_t* data = nullptr;
  uint64_t n_bytes = 0;  // 0 when the type's block size is unknown to the reader
};

class File {
 public:
  static Result<File> Open(const std::string& path);
  static Result<File> Parse(std::shared_ptr<MappedFile> file);
  // Parses an in-memory copy (tests, fuzzing); `path` only names the source in error messages.
  static Result<File> ParseBytes(std::string bytes, std::string path = "<memory>");

  uint32_t version() const { return version_; }
  const std::string& path() const { return path_; }
  uint32_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // file offset of the tensor data section
  const std::vector<std::pair<std::string_view, Value>>& metadata() const { return kv_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }

  const Value* Find(std::string_view key) const;
  // Typed getters: error if the key is missing or has another type (the message names key and
  // types).
  Result<std::string_view> GetString(std::string_view key) const;
  Result<uint64_t> GetUint(std::string_view key) const;  // any unsigned/signed integer type, >= 0
  Result<double> GetFloat(std::string_view key) const;   // f32/f64
  Result<const std::vector<std::string_view>*> GetStringArray(std::string_view key) const;
  Result<const std::vector<int64_t>*> GetIntArray(std::string_view key) const;
  Result<const std::vector<double>*> GetFloatArray(std::string_view key) const;

 private:
  Status ParseImpl();

  // The bytes are owned by exactly one of file_ / bytes_; data_ and every string_view point into
  // them.
  std::shared_ptr<MappedFile> file_;
  std::shared_ptr<const std::string> bytes_;
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  uint32_t version_ = 0;
  uint32_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string_view, Value>> kv_;
  std::unordered_map<std::string_view, size_t> index_;  // key -> position in kv_
  std::vector<TensorInfo> tensors_;
};

}  // namespace herd::gguf
