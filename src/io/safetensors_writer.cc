// safetensors writer; the layout is described at the top of safetensors_writer.h.
#include "io/safetensors_writer.h"

#include <bit>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>

namespace herd {
namespace {

static_assert(std::endian::native == std::endian::little, "safetensors is little-endian");

constexpr std::string_view kMetadataKey = "__metadata__";

std::optional<std::string_view> SafetensorsDTypeName(DType t) {
  switch (t) {
    case DType::kF64:
      return "F64";
    case DType::kF32:
      return "F32";
    case DType::kF16:
      return "F16";
    case DType::kBF16:
      return "BF16";
    case DType::kI64:
      return "I64";
    case DType::kI32:
      return "I32";
    case DType::kI16:
      return "I16";
    case DType::kI8:
      return "I8";
    case DType::kU8:
      return "U8";
    case DType::kBool:
      return "BOOL";
    default:
      return std::nullopt;
  }
}

// What the format cannot hold: other dtypes, and a tensor named like the metadata entry.
Status CheckFormat(const std::string& path, const std::vector<TensorToWrite>& tensors) {
  for (const TensorToWrite& t : tensors) {
    if (!SafetensorsDTypeName(t.dtype))
      return Status::Errorf(
          "{}: tensor '{}': dtype {} cannot be stored in safetensors (it holds F64, F32, F16, "
          "BF16, I64, I32, I16, I8, U8, BOOL)",
          path, t.name, Name(t.dtype));
    if (t.name == kMetadataKey)
      return Status::Errorf("{}: a tensor cannot be named '{}' (the metadata key)", path,
                            kMetadataKey);
  }
  return Status::Ok();
}

// The JSON header (tensors already checked), padded with spaces so that 8 + its size is a multiple
// of 8.
Result<std::string> Header(const std::string& path, const std::vector<TensorToWrite>& tensors,
                           const std::map<std::string, std::string>& metadata) {
  using json = nlohmann::ordered_json;  // keeps the tensors in the order given
  json root = json::object();
  if (!metadata.empty()) {
    json meta = json::object();
    for (const auto& [key, value] : metadata) meta[key] = value;
    root[std::string(kMetadataKey)] = std::move(meta);
  }
  uint64_t offset = 0;
  for (const TensorToWrite& t : tensors) {
    root[t.name] = {{"dtype", *SafetensorsDTypeName(t.dtype)},
                    {"shape", t.shape},
                    {"data_offsets", {offset, offset + t.n_bytes}}};
    offset += t.n_bytes;
  }
  std::string header;
  try {
    header = root.dump();  // strict: invalid UTF-8 in a name or metadata string throws
  } catch (const nlohmann::json::exception& e) {
    return Status::Errorf("{}: cannot encode the header: {}", path, e.what());
  }
  header.append((8 - header.size() % 8) % 8, ' ');
  return header;
}

}  // namespace

Status WriteSafetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                        const std::map<std::string, std::string>& metadata) {
  HERD_RETURN_IF_ERROR(CheckFormat(path, tensors));
  HERD_RETURN_IF_ERROR(ValidateTensorsToWrite(path, tensors));
  HERD_ASSIGN_OR_RETURN(std::string header, Header(path, tensors, metadata));
  HERD_ASSIGN_OR_RETURN(OutputFile file, OutputFile::Create(path));
  const uint64_t header_len = header.size();
  HERD_RETURN_IF_ERROR(file.Write(&header_len, sizeof(header_len)));
  HERD_RETURN_IF_ERROR(file.Write(header.data(), header.size()));
  for (const TensorToWrite& t : tensors) HERD_RETURN_IF_ERROR(file.Write(t.data, t.n_bytes));
  return file.Commit();
}

}  // namespace herd
