// Minimal read-only ZIP reader (PKWARE APPNOTE 6.3) for torch.save archives. Only STORED entries
// (method 0) can be read, so every entry is a zero-copy view into the mapped file. Layout, all
// little-endian:
//   per entry:  local header  "PK\3\4" u16 version u16 flags u16 method u16 time u16 date u32 crc
//                             u32 csize u32 usize u16 name_len u16 extra_len | name | extra | data
//   central directory, per entry:
//               "PK\1\2" u16 made_by u16 version u16 flags u16 method u16 time u16 date u32 crc
//               u32 csize u32 usize u16 name_len u16 extra_len u16 comment_len u16 disk
//               u16 int_attr u32 ext_attr u32 local_header_offset | name | extra | comment
//   [ZIP64 end of central directory record "PK\6\6" u64 record_size u16 made_by u16 version
//    u32 disk u32 cd_disk u64 n_entries_disk u64 n_entries u64 cd_size u64 cd_offset]
//   [ZIP64 locator "PK\6\7" u32 disk u64 zip64_eocd_offset u32 n_disks]
//   end of central directory "PK\5\6" u16 disk u16 cd_disk u16 n_entries_disk u16 n_entries
//               u32 cd_size u32 cd_offset u16 comment_len | comment
// A 0xFFFF / 0xFFFFFFFF field means "see ZIP64": the EOCD values come from the ZIP64 record, and
// an entry's usize, csize and local header offset (in that order, only those saturated) from its
// ZIP64 extra field (id 0x0001). torch writes the ZIP64 records always, and flag bit 3 (sizes in a
// data descriptor after the data, zeros in the local header), so sizes are taken from the central
// directory; the local header is read only for its name and extra lengths, to find the data.
// Every offset and size is checked against the file size before use.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace herd::zip {

struct Entry {
  std::string name;
  uint16_t method = 0;  // 0 = stored, 8 = deflated
  uint16_t flags = 0;
  uint64_t compressed_size = 0;
  uint64_t uncompressed_size = 0;
  uint64_t local_header_offset = 0;
};

class Archive {
 public:
  // Parses the central directory of `bytes` (which must outlive the Archive and every view it
  // returns). `file` names the source in error messages.
  static Result<Archive> Parse(std::string_view bytes, std::string file);

  const std::vector<Entry>& entries() const { return entries_; }
  const Entry* Find(std::string_view name) const;
  // The entry's bytes, a view into the archive. Errors for compressed or encrypted entries and for
  // local headers or data outside the file.
  Result<std::string_view> Data(const Entry& entry) const;
  const std::string& file() const { return file_; }

 private:
  std::string_view bytes_;
  std::string file_;
  std::vector<Entry> entries_;     // central directory order; names are unique
  std::vector<uint32_t> by_name_;  // indices into entries_, sorted by name
};

}  // namespace herd::zip
