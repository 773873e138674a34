#include "io/zip_writer.h"

#include <algorithm>
#include <array>
#include <cstring>

namespace herd::zip {
namespace {

constexpr uint32_t kLocalHeaderSig = 0x04034b50;
constexpr uint32_t kCentralHeaderSig = 0x02014b50;
constexpr uint32_t kEocdSig = 0x06054b50;
constexpr uint32_t kZip64EocdSig = 0x06064b50;
constexpr uint32_t kZip64LocatorSig = 0x07064b50;
constexpr uint16_t kZip64ExtraId = 0x0001;
constexpr uint16_t kPadExtraId = 0x4246;  // "FB", as torch pads
constexpr uint16_t kFlagUtf8 = 0x0800;
constexpr uint16_t kVersionPlain = 20;  // 2.0: stored entries, folders
constexpr uint16_t kVersionZip64 = 45;  // 4.5: ZIP64
constexpr uint16_t kDosTime = 0;        // 00:00:00
constexpr uint16_t kDosDate = 0x21;     // 1980-01-01: fixed, so output is reproducible
constexpr size_t kLocalHeaderSize = 30;
constexpr uint32_t kU32Max = 0xFFFFFFFF;
constexpr uint16_t kU16Max = 0xFFFF;
constexpr uint64_t kCrcChunk = uint64_t{1} << 20;  // CRC a chunk, then write it while it is hot

// Slicing-by-8 tables: kCrcTable[0] is the classic byte table for the reflected polynomial
// 0xEDB88320; kCrcTable[k][b] advances the CRC of byte b through k more zero bytes.
constexpr std::array<std::array<uint32_t, 256>, 8> MakeCrcTable() {
  std::array<std::array<uint32_t, 256>, 8> t{};
  for (uint32_t b = 0; b < 256; ++b) {
    uint32_t c = b;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    t[0][b] = c;
  }
  for (uint32_t b = 0; b < 256; ++b)
    for (size_t k = 1; k < 8; ++k) t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xff];
  return t;
}
constexpr auto kCrcTable = MakeCrcTable();

void Put(std::string& out, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}

// v as a u32 field: itself, or 0xFFFFFFFF when `big` says the value lives in ZIP64 records.
uint64_t U32Field(uint64_t v, bool big) { return big ? kU32Max : v; }

}  // namespace

uint32_t Crc32(const void* data, size_t n, uint32_t crc) {
  const auto* p = static_cast<const uint8_t*>(data);
  crc = ~crc;
  for (; n >= 8; n -= 8, p += 8) {
    uint32_t lo;
    std::memcpy(&lo, p, 4);  // little-endian hosts only, like the rest of io/
    lo ^= crc;
    crc = kCrcTable[7][lo & 0xff] ^ kCrcTable[6][(lo >> 8) & 0xff] ^
          kCrcTable[5][(lo >> 16) & 0xff] ^ kCrcTable[4][lo >> 24] ^ kCrcTable[3][p[4]] ^
          kCrcTable[2][p[5]] ^ kCrcTable[1][p[6]] ^ kCrcTable[0][p[7]];
  }
  for (; n > 0; --n, ++p) crc = (crc >> 8) ^ kCrcTable[0][(crc ^ *p) & 0xff];
  return ~crc;
}

Writer::Writer(OutputFile* file, WriterOptions options) : file_(file), options_(options) {}

Status Writer::Add(const std::string& name, const void* data, uint64_t size) {
  if (finished_)
    return Status::Errorf("{}: ZIP entry '{}' added after Finish", file_->path(), name);
  if (name.empty() || name.size() > kU16Max)
    return Status::Errorf("{}: ZIP entry name of {} bytes", file_->path(), name.size());
  if (!names_.insert(name).second)
    return Status::Errorf("{}: ZIP entry '{}' added twice", file_->path(), name);
  const uint64_t a = options_.alignment;
  if (a == 0 || a > 4096 || (a & (a - 1)) != 0)
    return Status::Errorf("{}: ZIP alignment {} is not a power of two <= 4096", file_->path(), a);

  const uint64_t offset = file_->size();
  const bool big_size = Big(size);
  std::string extra;
  if (big_size) {
    Put(extra, kZip64ExtraId, 2);
    Put(extra, 16, 2);
    Put(extra, size, 8);  // uncompressed
    Put(extra, size, 8);  // compressed
  }
  const uint64_t unpadded = offset + kLocalHeaderSize + name.size() + extra.size();
  uint64_t pad = (a - unpadded % a) % a;
  if (pad != 0 && pad < 4) pad += a;  // a padding field needs 4 bytes of header
  if (pad != 0) {
    Put(extra, kPadExtraId, 2);
    Put(extra, pad - 4, 2);
    extra.append(pad - 4, 'Z');
  }

  std::string h;
  Put(h, kLocalHeaderSig, 4);
  Put(h, big_size ? kVersionZip64 : kVersionPlain, 2);
  Put(h, kFlagUtf8, 2);
  Put(h, 0, 2);  // method: stored
  Put(h, kDosTime, 2);
  Put(h, kDosDate, 2);
  Put(h, 0, 4);  // CRC-32, patched below
  Put(h, U32Field(size, big_size), 4);
  Put(h, U32Field(size, big_size), 4);
  Put(h, name.size(), 2);
  Put(h, extra.size(), 2);
  h += name;
  h += extra;
  HERD_RETURN_IF_ERROR(file_->Write(h.data(), h.size()));

  const auto* p = static_cast<const uint8_t*>(data);
  uint32_t crc = 0;
  for (uint64_t done = 0; done < size;) {
    const uint64_t n = std::min(kCrcChunk, size - done);
    crc = Crc32(p + done, static_cast<size_t>(n), crc);
    HERD_RETURN_IF_ERROR(file_->Write(p + done, n));
    done += n;
  }
  std::string crc_bytes;
  Put(crc_bytes, crc, 4);
  HERD_RETURN_IF_ERROR(file_->WriteAt(offset + 14, crc_bytes.data(), crc_bytes.size()));
  entries_.push_back({name, crc, size, offset});
  return Status::Ok();
}

Status Writer::Finish() {
  if (finished_) return Status::Errorf("{}: ZIP Finish called twice", file_->path());
  finished_ = true;
  const uint64_t cd_offset = file_->size();
  std::string cd;
  for (const Written& e : entries_) {
    const bool big_size = Big(e.size), big_offset = Big(e.offset);
    std::string extra;
    if (big_size || big_offset) {
      Put(extra, kZip64ExtraId, 2);
      Put(extra, (big_size ? 16 : 0) + (big_offset ? 8 : 0), 2);
      if (big_size) {
        Put(extra, e.size, 8);  // uncompressed
        Put(extra, e.size, 8);  // compressed
      }
      if (big_offset) Put(extra, e.offset, 8);
    }
    // "Version needed" matches the local header, which carries ZIP64 only for big sizes.
    const uint16_t version = big_size ? kVersionZip64 : kVersionPlain;
    Put(cd, kCentralHeaderSig, 4);
    Put(cd, kVersionZip64, 2);  // made by: MS-DOS attributes, spec 4.5
    Put(cd, version, 2);
    Put(cd, kFlagUtf8, 2);
    Put(cd, 0, 2);  // method: stored
    Put(cd, kDosTime, 2);
    Put(cd, kDosDate, 2);
    Put(cd, e.crc, 4);
    Put(cd, U32Field(e.size, big_size), 4);
    Put(cd, U32Field(e.size, big_size), 4);
    Put(cd, e.name.size(), 2);
    Put(cd, extra.size(), 2);
    Put(cd, 0, 2);  // comment length
    Put(cd, 0, 2);  // disk number start
    Put(cd, 0, 2);  // internal attributes
    Put(cd, 0, 4);  // external attributes
    Put(cd, U32Field(e.offset, big_offset), 4);
    cd += e.name;
    cd += extra;
  }

  const uint64_t n = entries_.size();
  const uint64_t cd_size = cd.size();
  const bool big_count = n >= kU16Max || n >= options_.zip64_limit;
  const bool big_cd_size = Big(cd_size), big_cd_offset = Big(cd_offset);
  if (big_count || big_cd_size || big_cd_offset) {
    const uint64_t record = cd_offset + cd_size;
    Put(cd, kZip64EocdSig, 4);
    Put(cd, 44, 8);  // size of the rest of the record
    Put(cd, kVersionZip64, 2);
    Put(cd, kVersionZip64, 2);
    Put(cd, 0, 4);  // this disk
    Put(cd, 0, 4);  // disk with the central directory
    Put(cd, n, 8);
    Put(cd, n, 8);
    Put(cd, cd_size, 8);
    Put(cd, cd_offset, 8);
    Put(cd, kZip64LocatorSig, 4);
    Put(cd, 0, 4);  // disk with the ZIP64 end record
    Put(cd, record, 8);
    Put(cd, 1, 4);  // total disks
  }
  Put(cd, kEocdSig, 4);
  Put(cd, 0, 2);  // this disk
  Put(cd, 0, 2);  // disk with the central directory
  Put(cd, big_count ? kU16Max : n, 2);
  Put(cd, big_count ? kU16Max : n, 2);
  Put(cd, U32Field(cd_size, big_cd_size), 4);
  Put(cd, U32Field(cd_offset, big_cd_offset), 4);
  Put(cd, 0, 2);  // comment length
  return file_->Write(cd.data(), cd.size());
}

}  // namespace herd::zip
