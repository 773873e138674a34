#include "io/zip.h"

#include <algorithm>
#include <cstring>

namespace herd::zip {
namespace {

constexpr uint32_t kLocalHeaderSig = 0x04034b50;
constexpr uint32_t kCentralHeaderSig = 0x02014b50;
constexpr uint32_t kEocdSig = 0x06054b50;
constexpr uint32_t kZip64EocdSig = 0x06064b50;
constexpr uint32_t kZip64LocatorSig = 0x07064b50;
constexpr size_t kLocalHeaderSize = 30;
constexpr size_t kCentralHeaderSize = 46;
constexpr size_t kEocdSize = 22;
constexpr size_t kZip64EocdSize = 56;
constexpr size_t kZip64LocatorSize = 20;
constexpr uint16_t kZip64ExtraId = 0x0001;
constexpr uint16_t kU16Max = 0xFFFF;
constexpr uint32_t kU32Max = 0xFFFFFFFF;

uint16_t U16(std::string_view b, size_t at) {
  return static_cast<uint16_t>(static_cast<uint8_t>(b[at]) | static_cast<uint8_t>(b[at + 1]) << 8);
}
uint32_t U32(std::string_view b, size_t at) {
  return static_cast<uint32_t>(U16(b, at)) | static_cast<uint32_t>(U16(b, at + 2)) << 16;
}
uint64_t U64(std::string_view b, size_t at) {
  return static_cast<uint64_t>(U32(b, at)) | static_cast<uint64_t>(U32(b, at + 4)) << 32;
}

// True if [offset, offset + length) lies inside a buffer of `size` bytes (no overflow).
bool InBounds(uint64_t offset, uint64_t length, uint64_t size) {
  return offset <= size && length <= size - offset;
}

struct Directory {
  uint64_t n_entries = 0;
  uint64_t cd_size = 0;
  uint64_t cd_offset = 0;
};

// Locates the end of central directory record: the last "PK\5\6" whose comment ends the file.
Result<size_t> FindEocd(std::string_view b, const std::string& file) {
  if (b.size() < kEocdSize)
    return Status::Errorf("{}: not a ZIP archive ({} bytes, shorter than an end record)", file,
                          b.size());
  const size_t lowest = b.size() - kEocdSize > kU16Max ? b.size() - kEocdSize - kU16Max : 0;
  for (size_t pos = b.size() - kEocdSize;; --pos) {
    if (U32(b, pos) == kEocdSig && pos + kEocdSize + U16(b, pos + 20) == b.size()) return pos;
    if (pos == lowest) break;
  }
  return Status::Errorf("{}: not a ZIP archive (no end of central directory record; truncated?)",
                        file);
}

Result<Directory> ReadDirectory(std::string_view b, size_t eocd, const std::string& file) {
  Directory d;
  const uint16_t disk = U16(b, eocd + 4), cd_disk = U16(b, eocd + 6);
  d.n_entries = U16(b, eocd + 10);
  d.cd_size = U32(b, eocd + 12);
  d.cd_offset = U32(b, eocd + 16);
  const bool saturated = d.n_entries == kU16Max || d.cd_size == kU32Max || d.cd_offset == kU32Max;
  const bool has_locator =
      eocd >= kZip64LocatorSize && U32(b, eocd - kZip64LocatorSize) == kZip64LocatorSig;
  uint64_t cd_limit = eocd;  // the central directory ends before the end records
  if (has_locator) {
    const size_t loc = eocd - kZip64LocatorSize;
    const uint64_t rec = U64(b, loc + 8);
    if (!InBounds(rec, kZip64EocdSize, loc) || U32(b, rec) != kZip64EocdSig)
      return Status::Errorf("{}: offset {}: ZIP64 locator points to {}, not to a ZIP64 end record",
                            file, loc, rec);
    if (U32(b, rec + 16) != 0 || U32(b, rec + 20) != 0)
      return Status::Errorf("{}: multi-disk ZIP archives are not supported", file);
    d.n_entries = U64(b, rec + 32);
    d.cd_size = U64(b, rec + 40);
    d.cd_offset = U64(b, rec + 48);
    cd_limit = rec;
  } else if (saturated) {
    return Status::Errorf("{}: offset {}: end record needs ZIP64 but no ZIP64 locator precedes it",
                          file, eocd);
  } else if (disk != 0 || cd_disk != 0) {
    return Status::Errorf("{}: multi-disk ZIP archives are not supported", file);
  }
  if (!InBounds(d.cd_offset, d.cd_size, cd_limit))
    return Status::Errorf(
        "{}: central directory (offset {}, {} bytes) lies outside the file ({} bytes before the "
        "end records)",
        file, d.cd_offset, d.cd_size, cd_limit);
  if (d.n_entries > d.cd_size / kCentralHeaderSize)
    return Status::Errorf("{}: {} entries cannot fit in a central directory of {} bytes", file,
                          d.n_entries, d.cd_size);
  return d;
}

// Fills the saturated size/offset fields of `e` from the ZIP64 extra field in `extra`.
Status ApplyZip64Extra(std::string_view extra, bool need_usize, bool need_csize, bool need_offset,
                       Entry& e, const std::string& file) {
  size_t p = 0;
  while (p + 4 <= extra.size()) {
    const uint16_t id = U16(extra, p), len = U16(extra, p + 2);
    if (p + 4 + len > extra.size()) break;
    if (id == kZip64ExtraId) {
      std::string_view f = extra.substr(p + 4, len);
      size_t q = 0;
      for (auto [need, field] :
           {std::pair{need_usize, &e.uncompressed_size}, std::pair{need_csize, &e.compressed_size},
            std::pair{need_offset, &e.local_header_offset}}) {
        if (!need) continue;
        if (q + 8 > f.size())
          return Status::Errorf("{}: entry '{}': ZIP64 extra field is too short", file, e.name);
        *field = U64(f, q);
        q += 8;
      }
      return Status::Ok();
    }
    p += 4 + len;
  }
  return Status::Errorf("{}: entry '{}': sizes need ZIP64 but it has no ZIP64 extra field", file,
                        e.name);
}

// Reads one central directory header at `p` (inside [.., end)); advances p past it.
Result<Entry> ReadCentralHeader(std::string_view b, uint64_t& p, uint64_t end,
                                const std::string& file) {
  if (!InBounds(p, kCentralHeaderSize, end) || U32(b, p) != kCentralHeaderSig)
    return Status::Errorf("{}: offset {}: expected a central directory header (truncated?)", file,
                          p);
  Entry e;
  e.flags = U16(b, p + 8);
  e.method = U16(b, p + 10);
  e.compressed_size = U32(b, p + 20);
  e.uncompressed_size = U32(b, p + 24);
  const uint16_t name_len = U16(b, p + 28), extra_len = U16(b, p + 30),
                 comment_len = U16(b, p + 32);
  e.local_header_offset = U32(b, p + 42);
  const uint64_t var_len = uint64_t{name_len} + extra_len + comment_len;
  if (!InBounds(p + kCentralHeaderSize, var_len, end))
    return Status::Errorf("{}: offset {}: central directory header runs past the directory", file,
                          p);
  e.name.assign(b.substr(p + kCentralHeaderSize, name_len));
  const bool need_usize = e.uncompressed_size == kU32Max;
  const bool need_csize = e.compressed_size == kU32Max;
  const bool need_offset = e.local_header_offset == kU32Max;
  if (need_usize || need_csize || need_offset) {
    HERD_RETURN_IF_ERROR(ApplyZip64Extra(b.substr(p + kCentralHeaderSize + name_len, extra_len),
                                         need_usize, need_csize, need_offset, e, file));
  }
  if (!InBounds(e.local_header_offset, kLocalHeaderSize, b.size()))
    return Status::Errorf("{}: entry '{}': local header offset {} is past the end of the file",
                          file, e.name, e.local_header_offset);
  p += kCentralHeaderSize + var_len;
  return e;
}

}  // namespace

Result<Archive> Archive::Parse(std::string_view bytes, std::string file) {
  Archive a;
  a.bytes_ = bytes;
  a.file_ = std::move(file);
  HERD_ASSIGN_OR_RETURN(size_t eocd, FindEocd(bytes, a.file_));
  HERD_ASSIGN_OR_RETURN(Directory d, ReadDirectory(bytes, eocd, a.file_));
  a.entries_.reserve(d.n_entries);
  uint64_t p = d.cd_offset;
  const uint64_t end = d.cd_offset + d.cd_size;
  for (uint64_t i = 0; i < d.n_entries; ++i) {
    HERD_ASSIGN_OR_RETURN(Entry e, ReadCentralHeader(bytes, p, end, a.file_));
    a.entries_.push_back(std::move(e));
  }
  a.by_name_.resize(a.entries_.size());
  for (uint32_t i = 0; i < a.by_name_.size(); ++i) a.by_name_[i] = i;
  std::sort(a.by_name_.begin(), a.by_name_.end(),
            [&](uint32_t x, uint32_t y) { return a.entries_[x].name < a.entries_[y].name; });
  for (size_t i = 1; i < a.by_name_.size(); ++i) {
    const std::string& name = a.entries_[a.by_name_[i]].name;
    if (name == a.entries_[a.by_name_[i - 1]].name)
      return Status::Errorf("{}: entry '{}' appears twice in the central directory", a.file_, name);
  }
  return a;
}

const Entry* Archive::Find(std::string_view name) const {
  auto it = std::lower_bound(by_name_.begin(), by_name_.end(), name,
                             [&](uint32_t i, std::string_view n) { return entries_[i].name < n; });
  if (it == by_name_.end() || entries_[*it].name != name) return nullptr;
  return &entries_[*it];
}

Result<std::string_view> Archive::Data(const Entry& e) const {
  if (e.flags & 1) return Status::Errorf("{}: entry '{}' is encrypted", file_, e.name);
  if (e.method != 0)
    return Status::Errorf(
        "{}: entry '{}' is compressed (method {}{}); herd maps tensors without copying and reads "
        "only STORED (method 0) entries, as torch.save writes them",
        file_, e.name, e.method, e.method == 8 ? ", deflate" : "");
  if (e.compressed_size != e.uncompressed_size)
    return Status::Errorf("{}: stored entry '{}' has compressed size {} != uncompressed size {}",
                          file_, e.name, e.compressed_size, e.uncompressed_size);
  const uint64_t h = e.local_header_offset;
  if (!InBounds(h, kLocalHeaderSize, bytes_.size()) || U32(bytes_, h) != kLocalHeaderSig)
    return Status::Errorf("{}: entry '{}': no local header at offset {}", file_, e.name, h);
  const uint64_t name_len = U16(bytes_, h + 26), extra_len = U16(bytes_, h + 28);
  const uint64_t start = h + kLocalHeaderSize + name_len + extra_len;
  if (!InBounds(h + kLocalHeaderSize, name_len + extra_len, bytes_.size()) ||
      !InBounds(start, e.compressed_size, bytes_.size()))
    return Status::Errorf(
        "{}: entry '{}': data (offset {}, {} bytes) runs past the end of the file", file_, e.name,
        start, e.compressed_size);
  if (bytes_.substr(h + kLocalHeaderSize, name_len) != e.name)
    return Status::Errorf("{}: entry '{}': local header names it '{}'", file_, e.name,
                          bytes_.substr(h + kLocalHeaderSize, name_len));
  return bytes_.substr(start, e.compressed_size);
}

}  // namespace herd::zip
