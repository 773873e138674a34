#include "io/gguf_writer.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <type_traits>

namespace herd::gguf {

namespace {

template <typename T>
void Put(std::string* out, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));  // little-endian hosts only (x86-64, aarch64)
  out->append(b, sizeof(T));
}

void PutString(std::string* out, const std::string& s) {
  Put<uint64_t>(out, s.size());
  out->append(s);
}

// Value type ids (gguf.h ValueType).
constexpr uint32_t kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7, kStr = 8, kArr = 9, kU64 = 10;

uint64_t AlignUp(uint64_t n, uint64_t a) { return (n + a - 1) / a * a; }

}  // namespace

Result<uint32_t> GgmlTypeOf(DType t) {
  switch (t) {
    case DType::kF32:
      return 0u;
    case DType::kF16:
      return 1u;
    case DType::kQ4_0:
      return 2u;
    case DType::kQ4_1:
      return 3u;
    case DType::kQ5_0:
      return 6u;
    case DType::kQ5_1:
      return 7u;
    case DType::kQ8_0:
      return 8u;
    case DType::kQ4_K:
      return 12u;
    case DType::kQ5_K:
      return 13u;
    case DType::kQ6_K:
      return 14u;
    case DType::kBF16:
      return 30u;
    default:
      return Status::Errorf("dtype {} cannot be stored in GGUF", Name(t));
  }
}

void Writer::Key(const std::string& key, uint32_t type) {
  PutString(&kv_, key);
  Put<uint32_t>(&kv_, type);
  ++n_kv_;
  keys_.push_back(key);
}

template <typename T>
void Writer::SetScalar(const std::string& key, uint32_t type, T value) {
  Key(key, type);
  Put(&kv_, value);
}

template <typename T>
void Writer::SetArray(const std::string& key, uint32_t elem_type, const std::vector<T>& values) {
  Key(key, kArr);
  Put<uint32_t>(&kv_, elem_type);
  Put<uint64_t>(&kv_, values.size());
  for (const T& v : values) {
    if constexpr (std::is_same_v<T, std::string>) {
      PutString(&kv_, v);
    } else {
      Put(&kv_, v);
    }
  }
}

void Writer::SetString(const std::string& key, const std::string& value) {
  Key(key, kStr);
  PutString(&kv_, value);
}
void Writer::SetUint32(const std::string& key, uint32_t value) {
  SetScalar(key, kU32, value);
  if (key == "general.alignment") alignment_ = value;
}
void Writer::SetInt32(const std::string& key, int32_t value) { SetScalar(key, kI32, value); }
void Writer::SetUint64(const std::string& key, uint64_t value) { SetScalar(key, kU64, value); }
void Writer::SetFloat32(const std::string& key, float value) { SetScalar(key, kF32, value); }
void Writer::SetBool(const std::string& key, bool value) {
  SetScalar<uint8_t>(key, kBool, value ? 1 : 0);
}
void Writer::SetStringArray(const std::string& key, const std::vector<std::string>& values) {
  SetArray(key, kStr, values);
}
void Writer::SetInt32Array(const std::string& key, const std::vector<int32_t>& values) {
  SetArray(key, kI32, values);
}
void Writer::SetFloat32Array(const std::string& key, const std::vector<float>& values) {
  SetArray(key, kF32, values);
}

Status Writer::AddTensor(const std::string& name, DType dtype, const std::vector<int64_t>& shape,
                         const void* data, uint64_t n_bytes) {
  HERD_ASSIGN_OR_RETURN(uint32_t type, GgmlTypeOf(dtype));
  if (shape.empty() || shape.size() > 4)
    return Status::Errorf("tensor '{}': GGUF holds 1 to 4 dimensions, got {}", name, shape.size());
  uint64_t n = 1;
  for (int64_t d : shape) {
    if (d <= 0) return Status::Errorf("tensor '{}': dimension {} must be positive", name, d);
    n *= static_cast<uint64_t>(d);
  }
  if (shape.back() % Info(dtype).block_size != 0)
    return Status::Errorf("tensor '{}': row of {} elements is not a multiple of {}'s block of {}",
                          name, shape.back(), Name(dtype), Info(dtype).block_size);
  auto need = BytesFor(dtype, n);
  if (!need || *need != n_bytes)
    return Status::Errorf("tensor '{}': {} bytes given, shape needs {}", name, n_bytes,
                          need.value_or(0));
  for (const auto& t : tensors_)
    if (t.name == name) return Status::Errorf("tensor '{}' added twice", name);
  tensors_.push_back({name, type, shape, static_cast<const uint8_t*>(data), n_bytes});
  return Status::Ok();
}

// Everything before the tensor data: header, key/values, tensor infos, padding.
Result<std::string> Writer::Header() const {
  for (size_t i = 0; i < keys_.size(); ++i)
    for (size_t j = i + 1; j < keys_.size(); ++j)
      if (keys_[i] == keys_[j]) return Status::Errorf("metadata key '{}' set twice", keys_[i]);
  if (alignment_ == 0 || (alignment_ & (alignment_ - 1)) != 0)
    return Status::Errorf("general.alignment {} is not a power of two", alignment_);
  std::string out = "GGUF";
  Put<uint32_t>(&out, 3);
  Put<uint64_t>(&out, tensors_.size());
  Put<uint64_t>(&out, n_kv_);
  out += kv_;
  uint64_t offset = 0;
  for (const auto& t : tensors_) {
    PutString(&out, t.name);
    Put<uint32_t>(&out, static_cast<uint32_t>(t.shape.size()));
    for (auto it = t.shape.rbegin(); it != t.shape.rend(); ++it) Put<uint64_t>(&out, *it);
    Put<uint32_t>(&out, t.ggml_type);
    Put<uint64_t>(&out, offset);
    offset = AlignUp(offset + t.n_bytes, alignment_);
  }
  out.resize(AlignUp(out.size(), alignment_), '\0');
  return out;
}

Result<std::string> Writer::Serialize() const {
  HERD_ASSIGN_OR_RETURN(std::string out, Header());
  for (const auto& t : tensors_) {
    out.append(reinterpret_cast<const char*>(t.data), t.n_bytes);
    out.resize(AlignUp(out.size(), alignment_), '\0');
  }
  return out;
}

// Streams the tensors to disk (no copy of the model in memory).
Status Writer::Write(const std::string& path) const {
  HERD_ASSIGN_OR_RETURN(std::string header, Header());
  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) return Status::Errorf("{}: cannot create: {}", tmp, std::strerror(errno));
  static const char kZeros[256] = {};
  bool ok = std::fwrite(header.data(), 1, header.size(), f) == header.size();
  for (const auto& t : tensors_) {
    if (!ok) break;
    ok = std::fwrite(t.data, 1, t.n_bytes, f) == t.n_bytes;
    const uint64_t pad = AlignUp(t.n_bytes, alignment_) - t.n_bytes;
    for (uint64_t done = 0; ok && done < pad; done += sizeof(kZeros))
      ok = std::fwrite(kZeros, 1, std::min<uint64_t>(sizeof(kZeros), pad - done), f) ==
           std::min<uint64_t>(sizeof(kZeros), pad - done);
  }
  if (std::fclose(f) != 0 || !ok) {
    std::remove(tmp.c_str());
    return Status::Errorf("{}: write failed (disk full?)", tmp);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return Status::Errorf("{}: cannot rename to {}: {}", tmp, path, ec.message());
  return Status::Ok();
}

}  // namespace herd::gguf
