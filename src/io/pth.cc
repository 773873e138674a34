#include "io/pth.h"

#include <optional>
#include <string_view>
#include <vector>

#include "io/mapped_file.h"
#include "io/pickle.h"
#include "io/zip.h"

namespace herd {
namespace {

// The archive folder: the first path component of the one `<archive>/data.pkl` entry.
Result<std::string> FindArchivePrefix(const zip::Archive& zip) {
  constexpr std::string_view kPickle = "/data.pkl";
  std::optional<std::string> prefix;
  for (const zip::Entry& e : zip.entries()) {
    const std::string_view name = e.name;
    if (name.size() <= kPickle.size() || !name.ends_with(kPickle)) continue;
    const std::string_view folder = name.substr(0, name.size() - kPickle.size());
    if (folder.find('/') != std::string_view::npos) continue;
    if (prefix)
      return Status::Errorf("{}: two pickles ('{}/data.pkl' and '{}/data.pkl')", zip.file(),
                            *prefix, folder);
    prefix = std::string(folder);
  }
  if (!prefix)
    return Status::Errorf("{}: no '<archive>/data.pkl' entry: not a torch.save archive",
                          zip.file());
  return *prefix;
}

std::string Dims(const std::vector<int64_t>& v) { return fmt::format("({})", fmt::join(v, ", ")); }

// Checks that `t` is row-major contiguous and fits its storage; returns its element count.
Result<uint64_t> CheckTensor(const pickle::Tensor& t, const pickle::Storage& s,
                             const std::string& file, const std::string& name) {
  uint64_t numel = 1;
  for (int64_t d : t.shape) {
    if (d < 0)
      return Status::Errorf("{}: tensor '{}': negative size {}", file, name, Dims(t.shape));
    if (__builtin_mul_overflow(numel, static_cast<uint64_t>(d), &numel) || numel > (1ull << 62))
      return Status::Errorf("{}: tensor '{}': size {} overflows", file, name, Dims(t.shape));
  }
  if (numel > 0) {
    int64_t expected = 1;  // the row-major stride of dim i: the product of the sizes after it
    for (size_t i = t.shape.size(); i-- > 0;) {
      if (t.shape[i] != 1 && t.stride[i] != expected)
        return Status::Errorf(
            "{}: tensor '{}': stride {} is not contiguous row-major for size {}; herd reads "
            "contiguous tensors only (save `t.contiguous()`)",
            file, name, Dims(t.stride), Dims(t.shape));
      expected *= t.shape[i];  // <= numel, no overflow
    }
  }
  const uint64_t offset = static_cast<uint64_t>(t.storage_offset);
  if (offset > s.numel || numel > s.numel - offset)
    return Status::Errorf(
        "{}: tensor '{}': elements [{}, {}) lie outside storage '{}' of {} elements", file, name,
        offset, offset + numel, s.key, s.numel);
  return numel;
}

// The bytes of each storage (indexed like state.storages), as views into the archive.
Result<std::vector<std::string_view>> StorageBytes(const zip::Archive& zip,
                                                   const std::string& prefix,
                                                   const pickle::StateDict& state) {
  std::vector<std::string_view> out;
  out.reserve(state.storages.size());
  for (const pickle::Storage& s : state.storages) {
    const std::string entry_name = prefix + "/data/" + s.key;
    const zip::Entry* entry = zip.Find(entry_name);
    if (!entry)
      return Status::Errorf("{}: storage '{}' has no entry '{}' in the archive", zip.file(), s.key,
                            entry_name);
    HERD_ASSIGN_OR_RETURN(std::string_view bytes, zip.Data(*entry));
    const std::optional<uint64_t> need = BytesFor(s.dtype, s.numel);
    if (!need || bytes.size() < *need)
      return Status::Errorf("{}: storage '{}' holds {} bytes, too short for {} {} elements",
                            zip.file(), s.key, bytes.size(), s.numel, Name(s.dtype));
    out.push_back(bytes);
  }
  return out;
}

Result<TensorIndex> ParseArchive(std::string_view bytes, std::shared_ptr<const void> owner,
                                 const std::string& file) {
  if (bytes.size() >= 2 && static_cast<uint8_t>(bytes[0]) == 0x80 && bytes[1] == 0x02)
    return Status::Errorf(
        "{}: legacy torch.save format (torch < 1.6, a bare pickle) is not supported; re-save it "
        "with a current torch",
        file);
  HERD_ASSIGN_OR_RETURN(zip::Archive zip, zip::Archive::Parse(bytes, file));
  HERD_ASSIGN_OR_RETURN(std::string prefix, FindArchivePrefix(zip));
  if (const zip::Entry* e = zip.Find(prefix + "/byteorder")) {
    HERD_ASSIGN_OR_RETURN(std::string_view order, zip.Data(*e));
    if (order != "little")
      return Status::Errorf("{}: byteorder is '{}'; herd reads little-endian checkpoints only",
                            file, order.substr(0, 16));
  }
  HERD_ASSIGN_OR_RETURN(std::string_view pkl, zip.Data(*zip.Find(prefix + "/data.pkl")));
  HERD_ASSIGN_OR_RETURN(pickle::StateDict state, pickle::LoadStateDict(pkl, file + ": data.pkl"));
  HERD_ASSIGN_OR_RETURN(std::vector<std::string_view> storages, StorageBytes(zip, prefix, state));

  TensorIndex index;
  for (const auto& [name, t] : state.tensors) {
    const pickle::Storage& s = state.storages[t.storage];
    HERD_ASSIGN_OR_RETURN(uint64_t numel, CheckTensor(t, s, file, name));
    const uint64_t elem_bytes = static_cast<uint64_t>(Info(s.dtype).block_bytes);
    TensorEntry entry;
    entry.name = name;
    entry.dtype = s.dtype;
    entry.shape = t.shape;
    entry.data = reinterpret_cast<const uint8_t*>(storages[t.storage].data()) +
                 static_cast<uint64_t>(t.storage_offset) * elem_bytes;
    entry.n_bytes = numel * elem_bytes;
    entry.file = file;
    HERD_RETURN_IF_ERROR(index.Add(std::move(entry)));
  }
  index.Retain(std::move(owner));
  return index;
}

}  // namespace

Result<TensorIndex> LoadPth(const std::string& path) {
  HERD_ASSIGN_OR_RETURN(std::shared_ptr<MappedFile> file, MappedFile::Open(path));
  const std::string_view bytes = file->view();
  return ParseArchive(bytes, std::move(file), path);
}

Result<TensorIndex> ParsePth(std::shared_ptr<const std::string> bytes, const std::string& name) {
  const std::string_view view = *bytes;
  return ParseArchive(view, std::move(bytes), name);
}

}  // namespace herd
