// safetensors reader. The format is described at the top of safetensors.h. One parser works over a
// byte span plus an owner (the mapped file, or an owned string for the fuzzer), and validates every
// field before any pointer into the data buffer is formed.
#include "io/safetensors.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "io/mapped_file.h"

namespace herd {
namespace {

using json = nlohmann::json;

static_assert(std::endian::native == std::endian::little, "safetensors is little-endian");

// The official reader's limit (safetensors MAX_HEADER_SIZE): a header this large is hostile.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
constexpr std::string_view kMetadataKey = "__metadata__";
constexpr std::string_view kIndexFile = "model.safetensors.index.json";
constexpr std::string_view kSingleFile = "model.safetensors";

struct DTypeName {
  std::string_view name;  // as written in safetensors headers
  DType dtype;
};
constexpr std::array<DTypeName, 10> kDTypes = {{
    {"F64", DType::kF64},
    {"F32", DType::kF32},
    {"F16", DType::kF16},
    {"BF16", DType::kBF16},
    {"I64", DType::kI64},
    {"I32", DType::kI32},
    {"I16", DType::kI16},
    {"I8", DType::kI8},
    {"U8", DType::kU8},
    {"BOOL", DType::kBool},
}};

std::optional<DType> DTypeFromSafetensorsName(std::string_view name) {
  for (const DTypeName& d : kDTypes)
    if (d.name == name) return d.dtype;
  return std::nullopt;
}

// Names come from the file and may hold control characters (JSON escapes); keep messages one line.
std::string Printable(std::string_view s) {
  constexpr size_t kMaxShown = 120;
  std::string out;
  for (size_t i = 0; i < s.size() && i < kMaxShown; ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != 0x7f && c != '\\' && c != '\'') {
      out += static_cast<char>(c);  // printable ASCII, or a byte of a UTF-8 sequence
    } else {
      out += fmt::format("\\x{:02x}", c);
    }
  }
  if (s.size() > kMaxShown) out += fmt::format("... ({} bytes)", s.size());
  return out;
}

std::string FormatShape(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += fmt::format("{}{}", i ? ", " : "", shape[i]);
  return out + "]";
}

// A JSON integer that is >= 0 (nlohmann parses "-0" as a signed 0; integers past 2^64 as floats).
std::optional<uint64_t> AsUnsigned(const json& v) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer() && v.get<int64_t>() >= 0)
    return static_cast<uint64_t>(v.get<int64_t>());
  return std::nullopt;
}

// Parses one header entry into *out. `buffer` is the data buffer (file bytes after the header).
Status ParseEntry(const std::string& file, const std::string& name, const json& v,
                  const uint8_t* buffer, uint64_t buffer_size, TensorEntry* out) {
  auto fail = [&](std::string problem) {
    return Status::Errorf("{}: tensor '{}': {}", file, Printable(name), problem);
  };
  if (!v.is_object()) return fail("entry is not a JSON object");
  const auto dtype_it = v.find("dtype");
  const auto shape_it = v.find("shape");
  const auto offsets_it = v.find("data_offsets");
  if (dtype_it == v.end()) return fail("missing field 'dtype'");
  if (shape_it == v.end()) return fail("missing field 'shape'");
  if (offsets_it == v.end()) return fail("missing field 'data_offsets'");

  if (!dtype_it->is_string()) return fail("'dtype' is not a string");
  const std::string& dtype_name = dtype_it->get_ref<const std::string&>();
  const std::optional<DType> dtype = DTypeFromSafetensorsName(dtype_name);
  if (!dtype) {
    return fail(
        fmt::format("unsupported dtype '{}' (herd reads F64, F32, F16, BF16, I64, I32, I16, "
                    "I8, U8, BOOL)",
                    Printable(dtype_name)));
  }

  // Shape: non-negative integer dims. The product of the non-zero dims must fit in int64, so that
  // numel() (a running product) cannot overflow whatever order the zeros come in.
  if (!shape_it->is_array()) return fail("'shape' is not an array");
  std::vector<int64_t> shape;
  shape.reserve(shape_it->size());
  uint64_t nonzero_product = 1;
  bool has_zero = false;
  for (const json& d : *shape_it) {
    const std::optional<uint64_t> dim = AsUnsigned(d);
    if (!dim) {
      return fail(d.is_number_integer()
                      ? fmt::format("shape has a negative dim {}", d.get<int64_t>())
                      : std::string("shape has a dim that is not a non-negative integer"));
    }
    if (*dim == 0) {
      has_zero = true;
    } else if (__builtin_mul_overflow(nonzero_product, *dim, &nonzero_product) ||
               nonzero_product > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return fail("shape has more elements than fit in int64");
    }
    shape.push_back(static_cast<int64_t>(*dim));
  }
  const uint64_t numel = has_zero ? 0 : nonzero_product;

  if (!offsets_it->is_array() || offsets_it->size() != 2)
    return fail("'data_offsets' is not an array of two integers [begin, end]");
  const std::optional<uint64_t> begin = AsUnsigned((*offsets_it)[0]);
  const std::optional<uint64_t> end = AsUnsigned((*offsets_it)[1]);
  if (!begin || !end)
    return fail("'data_offsets' holds something other than non-negative integers");
  if (*begin > *end) return fail(fmt::format("data_offsets [{}, {}] run backwards", *begin, *end));
  if (*end > buffer_size) {
    return fail(fmt::format("data_offsets [{}, {}] run past the end of the data buffer ({} bytes)",
                            *begin, *end, buffer_size));
  }
  const std::optional<uint64_t> needed = BytesFor(*dtype, numel);
  if (!needed || *needed != *end - *begin) {
    return fail(fmt::format("data_offsets [{}, {}] hold {} bytes, shape {} of {} needs {}", *begin,
                            *end, *end - *begin, FormatShape(shape), Name(*dtype),
                            needed ? fmt::format("{}", *needed) : std::string("more than 2^64")));
  }

  out->name = name;
  out->dtype = *dtype;
  out->shape = std::move(shape);
  out->data = buffer + *begin;
  out->n_bytes = *end - *begin;
  out->file = file;
  return Status::Ok();
}

// Parses a whole safetensors file held in [data, data + size). Entries come back in data-offset
// order (at a shared offset, zero-size tensors first, by name).
Result<std::vector<TensorEntry>> ParseEntries(const uint8_t* data, size_t size,
                                              const std::string& file) {
  uint64_t header_len = 0;
  if (size < sizeof(header_len)) {
    return Status::Errorf("{}: {} bytes is too short for the 8-byte header length", file, size);
  }
  std::memcpy(&header_len, data, sizeof(header_len));
  const uint64_t after_len = size - sizeof(header_len);
  if (header_len > kMaxHeaderBytes) {
    return Status::Errorf("{}: header length {} exceeds the {}-byte limit", file, header_len,
                          kMaxHeaderBytes);
  }
  if (header_len > after_len) {
    return Status::Errorf("{}: header length {} runs past the end of the file ({} bytes after it)",
                          file, header_len, after_len);
  }
  const char* header = reinterpret_cast<const char*>(data + sizeof(header_len));
  const uint8_t* buffer = data + sizeof(header_len) + header_len;
  const uint64_t buffer_size = after_len - header_len;

  json root;
  try {
    root = json::parse(header, header + header_len);
  } catch (const json::parse_error& e) {
    return Status::Errorf("{}: header is not valid JSON (error at byte {} of {})", file, e.byte,
                          header_len);
  } catch (const json::exception& e) {  // out_of_range: a number like 1e999
    return Status::Errorf("{}: header is not valid JSON ({})", file, Printable(e.what()));
  }
  if (!root.is_object()) return Status::Errorf("{}: header is not a JSON object", file);

  std::vector<std::pair<uint64_t, TensorEntry>> entries;  // (begin offset, entry)
  entries.reserve(root.size());
  for (const auto& [name, value] : root.items()) {
    if (name == kMetadataKey) {
      if (!value.is_object()) return Status::Errorf("{}: '__metadata__' is not an object", file);
      for (const auto& [key, v] : value.items()) {
        if (!v.is_string()) {
          return Status::Errorf("{}: '__metadata__' value of '{}' is not a string", file,
                                Printable(key));
        }
      }
      continue;
    }
    TensorEntry entry;
    HERD_RETURN_IF_ERROR(ParseEntry(file, name, value, buffer, buffer_size, &entry));
    const uint64_t begin = static_cast<uint64_t>(entry.data - buffer);
    entries.emplace_back(begin, std::move(entry));
  }
  std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
    if (a.first != b.first) return a.first < b.first;
    if (a.second.n_bytes != b.second.n_bytes) return a.second.n_bytes < b.second.n_bytes;
    return a.second.name < b.second.name;  // zero-size tensors first at a shared offset
  });
  // As the official reader requires: the tensors tile the data buffer exactly, in offset order,
  // from 0 to its end, with no overlap (aliased weights) and no hole (unaccounted bytes).
  uint64_t expect = 0;
  for (const auto& [begin, entry] : entries) {
    if (begin != expect) {
      return Status::Errorf(
          "{}: tensor '{}' data_offsets start at {}, but the previous tensor ends at {} (tensors "
          "must follow each other without gaps or overlap)",
          file, Printable(entry.name), begin, expect);
    }
    expect = begin + entry.n_bytes;
  }
  if (expect != buffer_size) {
    return Status::Errorf("{}: the tensors cover {} bytes of the {}-byte data buffer", file, expect,
                          buffer_size);
  }
  std::vector<TensorEntry> out;
  out.reserve(entries.size());
  for (auto& [begin, entry] : entries) out.push_back(std::move(entry));
  return out;
}

// Adds all of `entries` to *index or, if any name is already there, none of them.
Status AddAll(std::vector<TensorEntry> entries, std::shared_ptr<const void> owner,
              TensorIndex* index) {
  for (const TensorEntry& e : entries) {
    if (const TensorEntry* old = index->Find(e.name)) {
      return Status::Errorf("tensor '{}' appears twice ({} and {})", Printable(e.name), old->file,
                            e.file);
    }
  }
  for (TensorEntry& e : entries) HERD_RETURN_IF_ERROR(index->Add(std::move(e)));
  index->Retain(std::move(owner));
  return Status::Ok();
}

// A shard named in index.json must be a relative path that stays inside the model directory.
bool IsSafeShardName(const std::string& shard) {
  if (shard.empty()) return false;
  const std::filesystem::path p(shard);
  if (p.is_absolute() || p.has_root_name()) return false;
  for (const auto& part : p)
    if (part == "..") return false;
  return true;
}

Result<TensorIndex> LoadShards(const std::filesystem::path& dir, const std::string& index_path) {
  HERD_ASSIGN_OR_RETURN(std::string text, ReadFileToString(index_path));
  json root;
  try {
    root = json::parse(text);
  } catch (const json::parse_error& e) {
    return Status::Errorf("{}: not valid JSON (error at byte {})", index_path, e.byte);
  } catch (const json::exception& e) {  // out_of_range: a number like 1e999
    return Status::Errorf("{}: not valid JSON ({})", index_path, Printable(e.what()));
  }
  if (!root.is_object()) return Status::Errorf("{}: not a JSON object", index_path);
  const auto map_it = root.find("weight_map");
  if (map_it == root.end() || !map_it->is_object())
    return Status::Errorf("{}: missing 'weight_map' object", index_path);
  if (map_it->empty()) return Status::Errorf("{}: 'weight_map' lists no tensors", index_path);

  // tensor -> shard path; shard path -> first tensor naming it (for messages).
  std::map<std::string, std::string> wanted;
  std::map<std::string, std::string> shards;
  for (const auto& [tensor, shard] : map_it->items()) {
    if (!shard.is_string()) {
      return Status::Errorf("{}: weight_map entry for '{}' is not a string", index_path,
                            Printable(tensor));
    }
    const std::string& shard_name = shard.get_ref<const std::string&>();
    if (!IsSafeShardName(shard_name)) {
      return Status::Errorf("{}: tensor '{}' names shard '{}', which is not inside {}", index_path,
                            Printable(tensor), Printable(shard_name), dir.string());
    }
    const std::string path = (dir / shard_name).string();
    wanted.emplace(tensor, path);
    shards.emplace(path, tensor);
  }

  TensorIndex index;
  for (const auto& [path, first_tensor] : shards) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
      return Status::Errorf("{}: shard {} (holding tensor '{}') does not exist", index_path, path,
                            Printable(first_tensor));
    }
    HERD_RETURN_IF_ERROR(AddSafetensors(path, &index));
  }
  for (const auto& [tensor, path] : wanted) {
    const TensorEntry* e = index.Find(tensor);
    if (e == nullptr) {
      return Status::Errorf("{}: tensor '{}' is mapped to {}, which does not hold it", index_path,
                            Printable(tensor), path);
    }
    if (e->file != path) {
      return Status::Errorf("{}: tensor '{}' is mapped to {} but is in {}", index_path,
                            Printable(tensor), path, e->file);
    }
  }
  return index;
}

}  // namespace

Result<TensorIndex> ParseSafetensors(std::shared_ptr<const std::string> bytes,
                                     const std::string& name) {
  HERD_ASSIGN_OR_RETURN(
      std::vector<TensorEntry> entries,
      ParseEntries(reinterpret_cast<const uint8_t*>(bytes->data()), bytes->size(), name));
  TensorIndex index;
  HERD_RETURN_IF_ERROR(AddAll(std::move(entries), std::move(bytes), &index));
  return index;
}

Status AddSafetensors(const std::string& path, TensorIndex* index) {
  HERD_ASSIGN_OR_RETURN(std::shared_ptr<MappedFile> file, MappedFile::Open(path));
  HERD_ASSIGN_OR_RETURN(std::vector<TensorEntry> entries,
                        ParseEntries(file->data(), file->size(), path));
  return AddAll(std::move(entries), std::move(file), index);
}

Result<TensorIndex> LoadSafetensors(const std::string& path) {
  TensorIndex index;
  HERD_RETURN_IF_ERROR(AddSafetensors(path, &index));
  return index;
}

Result<TensorIndex> LoadSafetensorsDir(const std::string& dir) {
  namespace fs = std::filesystem;
  const fs::path root(dir);
  std::error_code ec;
  const fs::path index_path = root / kIndexFile;
  if (fs::exists(index_path, ec)) return LoadShards(root, index_path.string());
  const fs::path single = root / kSingleFile;
  if (fs::exists(single, ec)) return LoadSafetensors(single.string());
  return Status::Errorf("{}: holds neither {} nor {}", dir, kIndexFile, kSingleFile);
}

}  // namespace herd
