// Streaming ZIP writer (PKWARE APPNOTE 6.3) for torch.save-style archives: STORED entries only,
// each payload aligned (64 bytes by default, as torch aligns storages so they can be mapped), the
// record layouts are those io/zip.h describes. Per entry:
//   local header   flags 0x0800 (UTF-8 names), method 0, the real sizes, and the CRC-32 patched in
//                  once the data is written (no data descriptor); extra fields: ZIP64 (0x0001:
//                  u64 usize, u64 csize; only when the entry needs it, with both u32 sizes
//                  0xFFFFFFFF), then 'FB' (0x4246) padding filled with 'Z' up to the alignment
//   data
// then the central directory (a ZIP64 extra holding, in order, usize, csize and local header offset
// for exactly those of the three that are saturated to 0xFFFFFFFF), and the end records: the ZIP64
// end record and locator only when a count, size or offset needs them, then the classic one with
// the fields that overflow saturated. ZIP64 is chosen per field, so archives under 4 GiB are plain
// ZIP; zip64_limit lowers the threshold so tests can reach the ZIP64 paths with small files.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_set>
#include <vector>

#include "base/status.h"
#include "io/tensor_writer.h"

namespace herd::zip {

// CRC-32 (ISO-HDLC, as ZIP and zlib's crc32 compute it). Chains: Crc32(b, n, Crc32(a, m)) is the
// CRC of a followed by b.
uint32_t Crc32(const void* data, size_t n, uint32_t crc = 0);

struct WriterOptions {
  uint64_t alignment = 64;  // payload offsets are multiples of this (a power of two, <= 4096)
  // Sizes and offsets >= this are written as ZIP64 (0xFFFFFFFF saturates the u32 fields, so it is
  // the natural limit); 0 makes every entry and the end records ZIP64.
  uint64_t zip64_limit = 0xFFFFFFFF;
};

class Writer {
 public:
  // Writes to `file`, which must outlive the Writer; entries start at the file's current size.
  explicit Writer(OutputFile* file, WriterOptions options = {});

  // Adds a STORED entry holding [data, data + size); the data is written in chunks while its
  // CRC-32 is computed, then the CRC is patched into the local header. Names must be unique.
  Status Add(const std::string& name, const void* data, uint64_t size);
  Status Add(const std::string& name, const std::string& data) {
    return Add(name, data.data(), data.size());
  }

  // Writes the central directory and the end records; call once, after the last Add.
  Status Finish();

 private:
  struct Written {
    std::string name;
    uint32_t crc;
    uint64_t size;
    uint64_t offset;  // of the local header
  };
  bool Big(uint64_t v) const { return v >= options_.zip64_limit || v >= 0xFFFFFFFF; }

  OutputFile* file_;
  WriterOptions options_;
  std::vector<Written> entries_;
  std::unordered_set<std::string> names_;
  bool finished_ = false;
};

}  // namespace herd::zip
