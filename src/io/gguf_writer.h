// GGUF v3 writer: metadata key/values and tensors, laid out as gguf.h describes (tensor data
// aligned to general.alignment, 32 by default). Write() goes to PATH.tmp and renames, so a crash
// never leaves a half-written file under the final name.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/dtype.h"
#include "base/status.h"

namespace herd::gguf {

// ggml type id of a dtype (F32 0, F16 1, Q4_0 2, Q4_1 3, Q5_0 6, Q5_1 7, Q8_0 8, Q4_K 12, Q5_K 13,
// Q6_K 14, BF16 30); error for dtypes GGUF cannot hold.
Result<uint32_t> GgmlTypeOf(DType t);

class Writer {
 public:
  void SetString(const std::string& key, const std::string& value);
  void SetUint32(const std::string& key, uint32_t value);
  void SetInt32(const std::string& key, int32_t value);
  void SetUint64(const std::string& key, uint64_t value);
  void SetFloat32(const std::string& key, float value);
  void SetBool(const std::string& key, bool value);
  void SetStringArray(const std::string& key, const std::vector<std::string>& values);
  void SetInt32Array(const std::string& key, const std::vector<int32_t>& values);
  void SetFloat32Array(const std::string& key, const std::vector<float>& values);

  // shape: row-major, outermost first (PyTorch order); written reversed, as GGUF's dims[0] is the
  // contiguous one. The bytes are copied when Write() runs, so `data` must stay valid until then.
  Status AddTensor(const std::string& name, DType dtype, const std::vector<int64_t>& shape,
                   const void* data, uint64_t n_bytes);

  Status Write(const std::string& path) const;
  // The whole file in memory (for tests and small files).
  Result<std::string> Serialize() const;

 private:
  struct Tensor {
    std::string name;
    uint32_t ggml_type;
    std::vector<int64_t> shape;
    const uint8_t* data;
    uint64_t n_bytes;
  };
  void Key(const std::string& key, uint32_t type);
  template <typename T>
  void SetScalar(const std::string& key, uint32_t type, T value);
  template <typename T>
  void SetArray(const std::string& key, uint32_t elem_type, const std::vector<T>& values);
  Result<std::string> Header() const;
  std::string kv_;  // serialized key/value pairs
  uint64_t n_kv_ = 0;
  uint32_t alignment_ = 32;
  std::vector<Tensor> tensors_;
  std::vector<std::string> keys_;
};

}  // namespace herd::gguf
