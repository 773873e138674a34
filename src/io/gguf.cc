// GGUF reader. The format is described at the top of gguf.h. Parsing walks the bytes once with a
// bounds-checked cursor; every count is checked against the bytes left (times the smallest encoding
// of one element) before anything is reserved, so a hostile count cannot make us allocate.
#include "io/gguf.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <iterator>
#include <limits>
#include <unordered_set>
#include <utility>

namespace herd::gguf {
namespace {

static_assert(std::endian::native == std::endian::little, "GGUF is little-endian; port the reader");

constexpr uint32_t kMaxValueType = static_cast<uint32_t>(ValueType::kFloat64);
// An array of arrays is accepted (its inner arrays are validated and skipped), nothing deeper.
constexpr int kMaxArrayDepth = 2;
constexpr uint32_t kMaxDims = 4;  // GGML_MAX_DIMS
constexpr uint32_t kDefaultAlignment = 32;
constexpr std::string_view kAlignmentKey = "general.alignment";

// Encoded size of a scalar, or the smallest encoding of one element (string: its u64 length; array:
// its u32 type and u64 count). Used to bound counts against the bytes left.
uint64_t MinEncodedSize(ValueType t) {
  switch (t) {
    case ValueType::kUint8:
    case ValueType::kInt8:
    case ValueType::kBool:
      return 1;
    case ValueType::kUint16:
    case ValueType::kInt16:
      return 2;
    case ValueType::kUint32:
    case ValueType::kInt32:
    case ValueType::kFloat32:
      return 4;
    case ValueType::kUint64:
    case ValueType::kInt64:
    case ValueType::kFloat64:
    case ValueType::kString:
      return 8;
    case ValueType::kArray:
      return 12;
  }
  return 1;
}

bool IsInteger(ValueType t) {
  switch (t) {
    case ValueType::kUint8:
    case ValueType::kInt8:
    case ValueType::kUint16:
    case ValueType::kInt16:
    case ValueType::kUint32:
    case ValueType::kInt32:
    case ValueType::kUint64:
    case ValueType::kInt64:
      return true;
    default:
      return false;
  }
}

bool IsFloat(ValueType t) { return t == ValueType::kFloat32 || t == ValueType::kFloat64; }

// Keys and names are arbitrary bytes; make them safe to print in an error message.
std::string Printable(std::string_view s) {
  constexpr size_t kMaxShown = 80;
  std::string out;
  for (size_t i = 0; i < s.size() && i < kMaxShown; ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("\\x{:02x}", c);
    }
  }
  if (s.size() > kMaxShown) out += fmt::format("... ({} bytes)", s.size());
  return out;
}

// Appends context ("in the value of key 'x'") to an error message.
Status WithContext(const Status& st, std::string_view context) {
  return Status::Errorf("{} ({})", st.message(), context);
}

// A bounds-checked little-endian cursor over the file bytes.
class Reader {
 public:
  Reader(const uint8_t* data, size_t size, const std::string& path)
      : data_(data), size_(size), path_(path) {}

  size_t pos() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }

  template <typename... Args>
  Status Fail(size_t at, fmt::format_string<Args...> f, Args&&... args) const {
    return Status::Errorf("{}: offset {}: {}", path_, at,
                          fmt::format(f, std::forward<Args>(args)...));
  }

  Status Need(uint64_t n, std::string_view what) const {
    if (n > remaining()) {
      return Fail(pos_, "truncated: {} needs {} bytes, {} left", what, n, remaining());
    }
    return Status::Ok();
  }

  template <typename T>
  Status Read(T* out, std::string_view what) {
    HERD_RETURN_IF_ERROR(Need(sizeof(T), what));
    std::memcpy(out, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return Status::Ok();
  }

  Status Skip(uint64_t n, std::string_view what) {
    HERD_RETURN_IF_ERROR(Need(n, what));
    pos_ += n;
    return Status::Ok();
  }

  // gguf string: u64 length + bytes (no terminator).
  Status ReadString(std::string_view* out, std::string_view what) {
    size_t at = pos_;
    uint64_t len = 0;
    HERD_RETURN_IF_ERROR(Read(&len, what));
    if (len > remaining()) {
      return Fail(at, "{} of {} bytes exceeds file size ({} bytes left)", what, len, remaining());
    }
    *out = std::string_view(reinterpret_cast<const char*>(data_ + pos_), len);
    pos_ += len;
    return Status::Ok();
  }

  Status ReadValueType(ValueType* out, std::string_view what) {
    size_t at = pos_;
    uint32_t raw = 0;
    HERD_RETURN_IF_ERROR(Read(&raw, what));
    if (raw > kMaxValueType) return Fail(at, "invalid {} {}", what, raw);
    *out = static_cast<ValueType>(raw);
    return Status::Ok();
  }

  // Reads one scalar of integer, bool or float type into the widened fields of `v`.
  Status ReadScalar(ValueType t, Value* v) {
    v->type = t;
    switch (t) {
      case ValueType::kUint8:
        return ReadInt<uint8_t>(v);
      case ValueType::kInt8:
        return ReadInt<int8_t>(v);
      case ValueType::kUint16:
        return ReadInt<uint16_t>(v);
      case ValueType::kInt16:
        return ReadInt<int16_t>(v);
      case ValueType::kUint32:
        return ReadInt<uint32_t>(v);
      case ValueType::kInt32:
        return ReadInt<int32_t>(v);
      case ValueType::kUint64:
        return ReadInt<uint64_t>(v);
      case ValueType::kInt64:
        return ReadInt<int64_t>(v);
      case ValueType::kBool: {
        uint8_t b = 0;
        HERD_RETURN_IF_ERROR(Read(&b, "bool"));
        v->i = b != 0;
        v->u = b != 0;
        return Status::Ok();
      }
      case ValueType::kFloat32: {
        float f = 0;
        HERD_RETURN_IF_ERROR(Read(&f, "float32"));
        v->f = f;
        return Status::Ok();
      }
      case ValueType::kFloat64:
        return Read(&v->f, "float64");
      case ValueType::kString:
        return ReadString(&v->s, "string");
      case ValueType::kArray:
        break;
    }
    return Fail(pos_, "internal: ReadScalar on an array");
  }

  // Reads any value of type `t`; `depth` is the array nesting of the value's container (0 at top
  // level).
  Status ReadValue(ValueType t, Value* v, int depth) {
    if (t == ValueType::kArray) return ReadArray(v, depth + 1);
    return ReadScalar(t, v);
  }

  // array = u32 element type | u64 count | elements. `depth` is this array's nesting (1 at top
  // level). With `out` null the array is validated and skipped.
  Status ReadArray(Value* out, int depth) {
    size_t at = pos_;
    ValueType elem = ValueType::kUint8;
    HERD_RETURN_IF_ERROR(ReadValueType(&elem, "array element type"));
    uint64_t count = 0;
    HERD_RETURN_IF_ERROR(Read(&count, "array length"));
    if (count > remaining() / MinEncodedSize(elem)) {
      return Fail(at, "array of {} {}s exceeds file size ({} bytes left)", count,
                  ValueTypeName(elem), remaining());
    }
    if (elem == ValueType::kArray && depth + 1 > kMaxArrayDepth) {
      return Fail(at, "arrays nested deeper than {} levels are not supported", kMaxArrayDepth);
    }
    if (out != nullptr) {
      out->type = ValueType::kArray;
      out->elem_type = elem;
      out->array_len = count;
    }
    if (elem == ValueType::kArray) {
      for (uint64_t k = 0; k < count; ++k) HERD_RETURN_IF_ERROR(ReadArray(nullptr, depth + 1));
      return Status::Ok();
    }
    if (out == nullptr) {
      if (elem != ValueType::kString) return Skip(count * MinEncodedSize(elem), "array");
      std::string_view s;
      for (uint64_t k = 0; k < count; ++k) HERD_RETURN_IF_ERROR(ReadString(&s, "string"));
      return Status::Ok();
    }
    Value scratch;
    if (elem == ValueType::kString) {
      out->strings.reserve(count);
      for (uint64_t k = 0; k < count; ++k) {
        HERD_RETURN_IF_ERROR(ReadString(&scratch.s, "string"));
        out->strings.push_back(scratch.s);
      }
    } else if (IsFloat(elem)) {
      out->floats.reserve(count);
      for (uint64_t k = 0; k < count; ++k) {
        HERD_RETURN_IF_ERROR(ReadScalar(elem, &scratch));
        out->floats.push_back(scratch.f);
      }
    } else {  // integers and bools
      out->ints.reserve(count);
      for (uint64_t k = 0; k < count; ++k) {
        HERD_RETURN_IF_ERROR(ReadScalar(elem, &scratch));
        out->ints.push_back(scratch.i);
      }
    }
    return Status::Ok();
  }

 private:
  template <typename T>
  Status ReadInt(Value* v) {
    T x{};
    HERD_RETURN_IF_ERROR(Read(&x, ValueTypeName(v->type)));
    v->i = static_cast<int64_t>(x);
    v->u = static_cast<uint64_t>(x);
    return Status::Ok();
  }

  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  const std::string& path_;
};

// Sizes of the ggml types we know, indexed by ggml_type (ggml.c type_traits). Types without a name
// here are carried through with n_bytes 0.
constexpr GgmlTypeInfo kGgmlTypes[] = {
    {"f32", 1, 4},      {"f16", 1, 2},      {"q4_0", 32, 18},   {"q4_1", 32, 20},    // 0-3
    {nullptr, 0, 0},    {nullptr, 0, 0},    {"q5_0", 32, 22},   {"q5_1", 32, 24},    // 4-7
    {"q8_0", 32, 34},   {"q8_1", 32, 36},   {"q2_K", 256, 84},  {"q3_K", 256, 110},  // 8-11
    {"q4_K", 256, 144}, {"q5_K", 256, 176}, {"q6_K", 256, 210}, {"q8_K", 256, 292},  // 12-15
    {nullptr, 0, 0},    {nullptr, 0, 0},    {nullptr, 0, 0},    {nullptr, 0, 0},     // 16-19
    {nullptr, 0, 0},    {nullptr, 0, 0},    {nullptr, 0, 0},    {nullptr, 0, 0},     // 20-23
    {"i8", 1, 1},       {"i16", 1, 2},      {"i32", 1, 4},      {"i64", 1, 8},       // 24-27
    {"f64", 1, 8},      {nullptr, 0, 0},    {"bf16", 1, 2},                          // 28-30
};

}  // namespace

const char* ValueTypeName(ValueType t) {
  switch (t) {
    case ValueType::kUint8:
      return "uint8";
    case ValueType::kInt8:
      return "int8";
    case ValueType::kUint16:
      return "uint16";
    case ValueType::kInt16:
      return "int16";
    case ValueType::kUint32:
      return "uint32";
    case ValueType::kInt32:
      return "int32";
    case ValueType::kFloat32:
      return "float32";
    case ValueType::kBool:
      return "bool";
    case ValueType::kString:
      return "string";
    case ValueType::kArray:
      return "array";
    case ValueType::kUint64:
      return "uint64";
    case ValueType::kInt64:
      return "int64";
    case ValueType::kFloat64:
      return "float64";
  }
  return "invalid";
}

const GgmlTypeInfo* FindGgmlType(uint32_t ggml_type) {
  if (ggml_type >= std::size(kGgmlTypes) || kGgmlTypes[ggml_type].name == nullptr) return nullptr;
  return &kGgmlTypes[ggml_type];
}

size_t Value::array_size() const { return static_cast<size_t>(array_len); }

Result<File> File::Open(const std::string& path) {
  HERD_ASSIGN_OR_RETURN(auto mapped, MappedFile::Open(path));
  return Parse(std::move(mapped));
}

Result<File> File::Parse(std::shared_ptr<MappedFile> file) {
  if (file == nullptr) return Status::Error("gguf::File::Parse: null file");
  File f;
  f.path_ = file->path();
  f.data_ = file->data();
  f.size_ = file->size();
  f.file_ = std::move(file);
  HERD_RETURN_IF_ERROR(f.ParseImpl());
  return f;
}

Result<File> File::ParseBytes(std::string bytes, std::string path) {
  File f;
  // Held by shared_ptr so the buffer (and the views into it) stays put when File moves.
  auto owned = std::make_shared<const std::string>(std::move(bytes));
  f.path_ = std::move(path);
  f.data_ = reinterpret_cast<const uint8_t*>(owned->data());
  f.size_ = owned->size();
  f.bytes_ = std::move(owned);
  HERD_RETURN_IF_ERROR(f.ParseImpl());
  return f;
}

namespace {

// Header: magic, version, counts. Counts are bounded by the smallest encoding of one entry: a kv is
// at least key length (8) + type (4) + a 1-byte value; a tensor info at least name length (8) +
// n_dims (4) + type (4) + offset (8).
Status ReadHeader(Reader& r, const uint8_t* data, size_t size, uint32_t* version,
                  uint64_t* n_tensors, uint64_t* n_kv) {
  if (size < 4) return r.Fail(0, "file of {} bytes is too short to be GGUF", size);
  if (std::memcmp(data, "GGUF", 4) != 0) {
    return r.Fail(0, "bad magic '{}', expected 'GGUF' (not a GGUF file)",
                  Printable({reinterpret_cast<const char*>(data), 4}));
  }
  HERD_RETURN_IF_ERROR(r.Skip(4, "magic"));
  HERD_RETURN_IF_ERROR(r.Read(version, "version"));
  if (*version == 1) {
    return r.Fail(4, "GGUF version 1 is not supported (32-bit counts); only versions 2 and 3");
  }
  if (*version != 2 && *version != 3) {
    uint32_t swapped = __builtin_bswap32(*version);
    if (swapped == 2 || swapped == 3) {
      return r.Fail(4, "big-endian GGUF (version {}) is not supported", swapped);
    }
    return r.Fail(4, "unsupported GGUF version {} (expected 2 or 3)", *version);
  }
  HERD_RETURN_IF_ERROR(r.Read(n_tensors, "tensor count"));
  HERD_RETURN_IF_ERROR(r.Read(n_kv, "metadata count"));
  if (*n_kv > r.remaining() / 13) {
    return r.Fail(16, "metadata count {} exceeds file size ({} bytes left)", *n_kv, r.remaining());
  }
  if (*n_tensors > r.remaining() / 24) {
    return r.Fail(8, "tensor count {} exceeds file size ({} bytes left)", *n_tensors,
                  r.remaining());
  }
  return Status::Ok();
}

// Reads one key/value pair at the cursor; `index` holds the keys read so far.
Status ReadKv(Reader& r, const std::unordered_map<std::string_view, size_t>& index,
              std::string_view* key, Value* value) {
  size_t at = r.pos();
  HERD_RETURN_IF_ERROR(r.ReadString(key, "metadata key"));
  if (index.count(*key) != 0) return r.Fail(at, "duplicate metadata key '{}'", Printable(*key));
  ValueType type = ValueType::kUint8;
  Status st = r.ReadValueType(&type, "value type");
  if (st.ok()) st = r.ReadValue(type, value, 0);
  if (!st.ok()) return WithContext(st, fmt::format("in the value of key '{}'", Printable(*key)));
  if (*key == kAlignmentKey) {
    if (type != ValueType::kUint32) {
      return r.Fail(at, "{} has type {}, expected uint32", kAlignmentKey, ValueTypeName(type));
    }
    if (!std::has_single_bit(value->u)) {
      return r.Fail(at, "{} = {} is not a power of two", kAlignmentKey, value->u);
    }
  }
  return Status::Ok();
}

// Reads tensor info number `k` at the cursor (name, dims, type, offset); placement is checked
// later, once the data section's start is known.
Status ReadTensorInfo(Reader& r, uint64_t k, TensorInfo* t) {
  HERD_RETURN_IF_ERROR(r.ReadString(&t->name, "tensor name"));
  uint32_t n_dims = 0;
  size_t dims_at = r.pos();
  Status st = r.Read(&n_dims, "n_dims");
  if (st.ok() && n_dims > kMaxDims) {
    st = r.Fail(dims_at, "tensor has {} dimensions, at most {} supported", n_dims, kMaxDims);
  }
  for (uint32_t d = 0; st.ok() && d < n_dims; ++d) {
    size_t dim_at = r.pos();
    uint64_t dim = 0;
    st = r.Read(&dim, "dimension");
    if (st.ok() && dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      st = r.Fail(dim_at, "dimension {} = {} is out of range", d, dim);
    }
    t->dims.push_back(dim);
  }
  if (st.ok()) st = r.Read(&t->ggml_type, "ggml type");
  if (st.ok()) st = r.Read(&t->offset, "data offset");
  if (!st.ok())
    return WithContext(st, fmt::format("in tensor info {} '{}'", k, Printable(t->name)));
  return Status::Ok();
}

// Computes n_bytes and the data pointer of `t`, whose info starts at file offset `info_at`,
// checking that its data is aligned and lies inside the file.
Status PlaceTensor(const Reader& r, size_t info_at, const uint8_t* data, size_t size,
                   uint64_t data_offset, uint32_t alignment, TensorInfo* t) {
  auto name = [&] { return Printable(t->name); };
  if (t->offset % alignment != 0) {
    return r.Fail(info_at, "tensor '{}': data offset {} is not a multiple of the alignment {}",
                  name(), t->offset, alignment);
  }
  uint64_t n_elements = 1;
  for (uint64_t d : t->dims) {
    if (__builtin_mul_overflow(n_elements, d, &n_elements)) {
      return r.Fail(info_at, "tensor '{}': element count overflows", name());
    }
  }
  if (const GgmlTypeInfo* type = FindGgmlType(t->ggml_type)) {
    uint64_t row = t->dims.empty() ? 1 : t->dims[0];
    if (row % type->block_size != 0) {
      return r.Fail(info_at, "tensor '{}': row length {} is not a multiple of the {} block size {}",
                    name(), row, type->name, type->block_size);
    }
    if (__builtin_mul_overflow(n_elements / type->block_size, uint64_t{type->type_size},
                               &t->n_bytes)) {
      return r.Fail(info_at, "tensor '{}': byte size overflows", name());
    }
  }
  if (data_offset > size || t->offset > size - data_offset) {
    return r.Fail(info_at,
                  "tensor '{}': data offset {} lies past the end of the file (data section at {}, "
                  "file size {})",
                  name(), t->offset, data_offset, size);
  }
  uint64_t begin = data_offset + t->offset;
  if (t->n_bytes > size - begin) {
    return r.Fail(info_at,
                  "tensor '{}': {} bytes of data at file offset {} extend past the end of the file "
                  "(file size {})",
                  name(), t->n_bytes, begin, size);
  }
  t->data = data + begin;
  return Status::Ok();
}

}  // namespace

Status File::ParseImpl() {
  Reader r(data_, size_, path_);
  uint64_t n_tensors = 0, n_kv = 0;
  HERD_RETURN_IF_ERROR(ReadHeader(r, data_, size_, &version_, &n_tensors, &n_kv));

  kv_.reserve(n_kv);
  index_.reserve(n_kv);
  alignment_ = kDefaultAlignment;
  for (uint64_t k = 0; k < n_kv; ++k) {
    std::string_view key;
    Value value;
    HERD_RETURN_IF_ERROR(ReadKv(r, index_, &key, &value));
    if (key == kAlignmentKey) alignment_ = static_cast<uint32_t>(value.u);
    index_.emplace(key, kv_.size());
    kv_.emplace_back(key, std::move(value));
  }

  tensors_.reserve(n_tensors);
  std::vector<size_t> info_at;  // file offset of each tensor info, for error messages
  info_at.reserve(n_tensors);
  std::unordered_set<std::string_view> names;
  names.reserve(n_tensors);
  for (uint64_t k = 0; k < n_tensors; ++k) {
    info_at.push_back(r.pos());
    TensorInfo t;
    HERD_RETURN_IF_ERROR(ReadTensorInfo(r, k, &t));
    if (!names.insert(t.name).second) {
      return r.Fail(info_at.back(), "duplicate tensor name '{}'", Printable(t.name));
    }
    tensors_.push_back(std::move(t));
  }

  // The data section starts at the next multiple of the alignment (a power of two; pos <= size, so
  // no overflow).
  data_offset_ = (uint64_t{r.pos()} + alignment_ - 1) & ~(uint64_t{alignment_} - 1);
  for (size_t k = 0; k < tensors_.size(); ++k) {
    HERD_RETURN_IF_ERROR(
        PlaceTensor(r, info_at[k], data_, size_, data_offset_, alignment_, &tensors_[k]));
  }
  // Tensors must not share bytes (llama.cpp lays them out back to back): overlapping ranges mean a
  // corrupt or hostile file whose "weights" would silently alias each other.
  std::vector<const TensorInfo*> by_offset;
  for (const TensorInfo& t : tensors_)
    if (t.n_bytes > 0) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const TensorInfo* a, const TensorInfo* b) { return a->offset < b->offset; });
  for (size_t k = 1; k < by_offset.size(); ++k) {
    const TensorInfo& a = *by_offset[k - 1];
    const TensorInfo& b = *by_offset[k];
    if (b.offset < a.offset + a.n_bytes) {
      return Status::Errorf("{}: tensor '{}' (data offset {}) overlaps tensor '{}' (bytes {}..{})",
                            path_, Printable(b.name), b.offset, Printable(a.name), a.offset,
                            a.offset + a.n_bytes);
    }
  }
  return Status::Ok();
}

const Value* File::Find(std::string_view key) const {
  auto it = index_.find(key);
  return it == index_.end() ? nullptr : &kv_[it->second].second;
}

namespace {

std::string TypeDescription(const Value& v) {
  if (v.type != ValueType::kArray) return ValueTypeName(v.type);
  return fmt::format("array of {}", ValueTypeName(v.elem_type));
}

Result<const Value*> FindOrError(const File& f, std::string_view key) {
  const Value* v = f.Find(key);
  if (v == nullptr)
    return Status::Errorf("{}: metadata key '{}' not found", f.path(), Printable(key));
  return v;
}

Status WrongType(const File& f, std::string_view key, const Value& v, std::string_view expected) {
  return Status::Errorf("{}: metadata key '{}' has type {}, expected {}", f.path(), Printable(key),
                        TypeDescription(v), expected);
}

}  // namespace

Result<std::string_view> File::GetString(std::string_view key) const {
  HERD_ASSIGN_OR_RETURN(const Value* v, FindOrError(*this, key));
  if (v->type != ValueType::kString) return WrongType(*this, key, *v, "string");
  return v->s;
}

Result<uint64_t> File::GetUint(std::string_view key) const {
  HERD_ASSIGN_OR_RETURN(const Value* v, FindOrError(*this, key));
  if (!IsInteger(v->type)) return WrongType(*this, key, *v, "an integer");
  bool is_signed = v->type == ValueType::kInt8 || v->type == ValueType::kInt16 ||
                   v->type == ValueType::kInt32 || v->type == ValueType::kInt64;
  if (is_signed && v->i < 0) {
    return Status::Errorf("{}: metadata key '{}' is negative ({}), expected a count", path(),
                          Printable(key), v->i);
  }
  return v->u;
}

Result<double> File::GetFloat(std::string_view key) const {
  HERD_ASSIGN_OR_RETURN(const Value* v, FindOrError(*this, key));
  if (!IsFloat(v->type)) return WrongType(*this, key, *v, "float32 or float64");
  return v->f;
}

Result<const std::vector<std::string_view>*> File::GetStringArray(std::string_view key) const {
  HERD_ASSIGN_OR_RETURN(const Value* v, FindOrError(*this, key));
  if (v->type != ValueType::kArray || v->elem_type != ValueType::kString) {
    return WrongType(*this, key, *v, "array of string");
  }
  return &v->strings;
}

Result<const std::vector<int64_t>*> File::GetIntArray(std::string_view key) const {
  HERD_ASSIGN_OR_RETURN(const Value* v, FindOrError(*this, key));
  if (v->type != ValueType::kArray ||
      !(IsInteger(v->elem_type) || v->elem_type == ValueType::kBool)) {
    return WrongType(*this, key, *v, "array of integers");
  }
  return &v->ints;
}

Result<const std::vector<double>*> File::GetFloatArray(std::string_view key) const {
  HERD_ASSIGN_OR_RETURN(const Value* v, FindOrError(*this, key));
  if (v->type != ValueType::kArray || !IsFloat(v->elem_type)) {
    return WrongType(*this, key, *v, "array of float32 or float64");
  }
  return &v->floats;
}

}  // namespace herd::gguf
