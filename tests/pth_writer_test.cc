// torch.save-compatible writer: round trips through the reader (io/pth.h), the ZIP checked by an
// independent walk of its records here (names, 64-byte alignment, CRC-32s recomputed bitwise,
// ZIP64 fields), the pickle compared byte for byte with one written by real torch.save, and the
// errors. With HERD_WRITE_SAMPLE_DIR set, WriterSamples leaves files for tools/check_pth_writer.py.
#include "io/pth_writer.h"

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "io/pth.h"
#include "io/safetensors_writer.h"
#include "io/zip.h"
#include "io/zip_writer.h"

namespace herd {
namespace {

namespace fs = std::filesystem;

fs::path TempDir(const std::string& name) {
  fs::path dir = fs::path(::testing::TempDir()) / ("herd_pth_writer_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::string ReadAll(const fs::path& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), {});
}

// A tensor and its bytes. The pattern (tools/check_pth_writer.py computes the same): byte i of the
// tensor with seed s is (31 * i + 7 * s + 1) mod 256, or (i + s) mod 2 for bool.
struct Owned {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  std::string bytes;

  TensorToWrite View() const { return {name, dtype, shape, bytes.data(), bytes.size()}; }
};

Owned Make(std::string name, DType dtype, std::vector<int64_t> shape, int seed) {
  uint64_t numel = 1;
  for (int64_t d : shape) numel *= static_cast<uint64_t>(d);
  std::string bytes(*BytesFor(dtype, numel), '\0');
  for (size_t i = 0; i < bytes.size(); ++i)
    bytes[i] = static_cast<char>(dtype == DType::kBool ? (i + seed) % 2 : (31 * i + 7 * seed + 1));
  return {std::move(name), dtype, std::move(shape), std::move(bytes)};
}

std::vector<TensorToWrite> Views(const std::vector<Owned>& owned) {
  std::vector<TensorToWrite> v;
  for (const Owned& o : owned) v.push_back(o.View());
  return v;
}

// Every dtype, a 0-d and an empty tensor, and one whose strides need BININT2 (seed = index).
std::vector<Owned> Sample() {
  return {Make("model.f32", DType::kF32, {2, 3}, 0), Make("f16", DType::kF16, {4}, 1),
          Make("bf16", DType::kBF16, {3, 1, 2}, 2),  Make("f64", DType::kF64, {2}, 3),
          Make("i64", DType::kI64, {2, 2}, 4),       Make("i32", DType::kI32, {3}, 5),
          Make("i16", DType::kI16, {1, 5}, 6),       Make("i8", DType::kI8, {7}, 7),
          Make("u8", DType::kU8, {2, 2, 2}, 8),      Make("bool", DType::kBool, {5}, 9),
          Make("scalar", DType::kF32, {}, 10),       Make("empty", DType::kBF16, {0, 3}, 11),
          Make("big", DType::kF32, {100, 700}, 12)};
}

void ExpectRoundTrip(const fs::path& path, const std::vector<Owned>& want) {
  auto index = LoadPth(path);
  ASSERT_TRUE(index.ok()) << index.status().message();
  ASSERT_EQ(index->size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    const TensorEntry& e = index->entries()[i];  // pickle order: the order given
    SCOPED_TRACE(want[i].name);
    EXPECT_EQ(e.name, want[i].name);
    EXPECT_EQ(e.dtype, want[i].dtype);
    EXPECT_EQ(e.shape, want[i].shape);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(e.data), e.n_bytes), want[i].bytes);
  }
}

// ---- An independent walk of the ZIP records (APPNOTE 6.3) ----

uint64_t Le(const std::string& b, uint64_t at, int n) {
  if (at > b.size() || b.size() - at < static_cast<uint64_t>(n)) {
    ADD_FAILURE() << "read of " << n << " bytes at " << at << " is past the end";
    return 0;
  }
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = v << 8 | static_cast<uint8_t>(b[at + i]);
  return v;
}

uint32_t BitwiseCrc32(std::string_view s) {
  uint32_t c = 0xFFFFFFFF;
  for (unsigned char ch : s) {
    c ^= ch;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1)));
  }
  return ~c;
}

struct Record {
  std::string name;
  uint32_t crc;
  uint64_t size, offset;
  uint64_t payload;        // offset of the data
  bool central_zip64;      // central header carries a ZIP64 extra
  bool local_zip64;        // local header carries a ZIP64 extra
  uint16_t local_version;  // version needed, as the local header says
};

struct Walk {
  std::vector<Record> records;
  bool zip64_end = false;  // ZIP64 end record and locator present
  bool eocd_saturated = false;
};

// Walks the end records and central directory, and checks each local header against its central
// one (same name, flags, CRC and sizes).
Walk WalkZip(const std::string& b) {
  Walk w;
  const size_t eocd = b.size() - 22;
  EXPECT_EQ(Le(b, eocd, 4), 0x06054b50u);
  uint64_t n = Le(b, eocd + 10, 2), cd_size = Le(b, eocd + 12, 4), cd = Le(b, eocd + 16, 4);
  w.eocd_saturated = n == 0xFFFF && cd_size == 0xFFFFFFFF && cd == 0xFFFFFFFF;
  if (eocd >= 20 && Le(b, eocd - 20, 4) == 0x07064b50) {
    w.zip64_end = true;
    const uint64_t rec = Le(b, eocd - 12, 8);
    EXPECT_EQ(Le(b, rec, 4), 0x06064b50u);
    EXPECT_EQ(rec + 56, eocd - 20);
    n = Le(b, rec + 32, 8);
    cd_size = Le(b, rec + 40, 8);
    cd = Le(b, rec + 48, 8);
  }
  for (uint64_t i = 0, p = cd; i < n; ++i) {
    if (Le(b, p, 4) != 0x02014b50u) {
      ADD_FAILURE() << "no central directory header at " << p;
      break;
    }
    Record r;
    r.crc = static_cast<uint32_t>(Le(b, p + 16, 4));
    r.size = Le(b, p + 24, 4);
    EXPECT_EQ(Le(b, p + 20, 4), r.size);  // compressed == uncompressed
    EXPECT_EQ(Le(b, p + 10, 2), 0u);      // stored
    EXPECT_EQ(Le(b, p + 8, 2), 0x0800u);  // UTF-8 names, no data descriptor
    const uint64_t name_len = Le(b, p + 28, 2), extra_len = Le(b, p + 30, 2);
    r.offset = Le(b, p + 42, 4);
    r.name = b.substr(p + 46, name_len);
    r.central_zip64 = extra_len > 0;
    if (r.central_zip64) {  // only a ZIP64 extra, holding the saturated fields in order
      const uint64_t x = p + 46 + name_len;
      EXPECT_EQ(Le(b, x, 2), 1u);
      uint64_t q = x + 4;
      if (r.size == 0xFFFFFFFF) {
        r.size = Le(b, q, 8);
        EXPECT_EQ(Le(b, q + 8, 8), r.size);
        q += 16;
      }
      if (r.offset == 0xFFFFFFFF) {
        r.offset = Le(b, q, 8);
        q += 8;
      }
      EXPECT_EQ(q, x + extra_len);
    }
    p += 46 + name_len + extra_len + Le(b, p + 32, 2);
    // The local header agrees.
    const uint64_t h = r.offset;
    EXPECT_EQ(Le(b, h, 4), 0x04034b50u);
    EXPECT_EQ(Le(b, h + 6, 2), 0x0800u);
    EXPECT_EQ(Le(b, h + 14, 4), r.crc);
    r.local_version = static_cast<uint16_t>(Le(b, h + 4, 2));
    const uint64_t lname = Le(b, h + 26, 2), lextra = Le(b, h + 28, 2);
    EXPECT_EQ(b.substr(h + 30, lname), r.name);
    r.local_zip64 = Le(b, h + 18, 4) == 0xFFFFFFFF;
    if (r.local_zip64) {
      EXPECT_EQ(Le(b, h + 30 + lname, 4), 0x00100001u);  // id 1, 16 bytes
      EXPECT_EQ(Le(b, h + 34 + lname, 8), r.size);
      EXPECT_EQ(Le(b, h + 42 + lname, 8), r.size);
    } else {
      EXPECT_EQ(Le(b, h + 18, 4), r.size);
      EXPECT_EQ(Le(b, h + 22, 4), r.size);
    }
    r.payload = h + 30 + lname + lextra;
    w.records.push_back(r);
  }
  return w;
}

std::vector<std::string> Names(const Walk& w) {
  std::vector<std::string> v;
  for (const Record& r : w.records) v.push_back(r.name);
  return v;
}

void ExpectAlignedWithCrcs(const std::string& bytes, const Walk& w) {
  for (const Record& r : w.records) {
    SCOPED_TRACE(r.name);
    EXPECT_EQ(r.payload % 64, 0u);
    ASSERT_LE(r.payload + r.size, bytes.size());
    EXPECT_EQ(r.crc, BitwiseCrc32(std::string_view(bytes).substr(r.payload, r.size)));
  }
}

// ---- Tests ----

TEST(ZipWriterCrc32, MatchesTheBitwiseDefinition) {
  EXPECT_EQ(zip::Crc32("123456789", 9), 0xCBF43926u);  // the standard check value
  EXPECT_EQ(zip::Crc32("", 0), 0u);
  std::string s(1000, '\0');
  for (size_t i = 0; i < s.size(); ++i) s[i] = static_cast<char>(i * 131 + (i >> 3));
  for (size_t n : {1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 1000}) {
    const uint32_t want = BitwiseCrc32(std::string_view(s).substr(0, n));
    EXPECT_EQ(zip::Crc32(s.data(), n), want) << n;
    for (size_t cut : {size_t{0}, std::min<size_t>(3, n), n / 2, n})  // chaining
      EXPECT_EQ(zip::Crc32(s.data() + cut, n - cut, zip::Crc32(s.data(), cut)), want) << n;
  }
}

TEST(PthWriter, EveryDTypeRoundTrips) {
  const fs::path path = TempDir("dtypes") / "consolidated.00.pth";
  const std::vector<Owned> tensors = Sample();
  ASSERT_TRUE(WritePth(path, Views(tensors)).ok());
  EXPECT_FALSE(fs::exists(path.string() + ".tmp"));
  ExpectRoundTrip(path, tensors);
}

TEST(PthWriter, ArchiveLayoutAlignmentAndCrcs) {
  const fs::path path = TempDir("layout") / "consolidated.00.pth";
  const std::vector<Owned> tensors = Sample();
  ASSERT_TRUE(WritePth(path, Views(tensors)).ok());
  const std::string bytes = ReadAll(path);
  const Walk w = WalkZip(bytes);
  std::vector<std::string> want = {"consolidated/data.pkl", "consolidated/byteorder"};
  for (size_t i = 0; i < tensors.size(); ++i)
    want.push_back(fmt::format("consolidated/data/{}", i));
  want.push_back("consolidated/version");
  EXPECT_EQ(Names(w), want);
  EXPECT_FALSE(w.zip64_end);  // a small file is plain ZIP
  for (const Record& r : w.records) EXPECT_FALSE(r.central_zip64 || r.local_zip64) << r.name;
  ExpectAlignedWithCrcs(bytes, w);
  EXPECT_EQ(bytes.substr(w.records[1].payload, w.records[1].size), "little");
  EXPECT_EQ(bytes.substr(w.records.back().payload, w.records.back().size), "3\n");
  for (size_t i = 0; i < tensors.size(); ++i)
    EXPECT_EQ(bytes.substr(w.records[2 + i].payload, w.records[2 + i].size), tensors[i].bytes);
  // The reader's view of the same archive agrees.
  auto zip = zip::Archive::Parse(bytes, path);
  ASSERT_TRUE(zip.ok()) << zip.status().message();
  EXPECT_EQ(zip->entries().size(), want.size());
}

TEST(PthWriter, ArchiveNameIsTheFileStem) {
  EXPECT_EQ(PthArchiveName("/ckpt/Meta-Llama-3-8B/consolidated.00.pth"), "consolidated");
  EXPECT_EQ(PthArchiveName("model.pth"), "model");
  EXPECT_EQ(PthArchiveName("dir.with.dots/weights"), "weights");
  EXPECT_EQ(PthArchiveName("a.b.c"), "a");
  EXPECT_EQ(PthArchiveName(".pth"), "archive");
  const fs::path path = TempDir("name") / "my-model.v2.pth";
  const Owned t = Make("w", DType::kF32, {2}, 0);
  ASSERT_TRUE(WritePth(path, {t.View()}).ok());
  EXPECT_EQ(WalkZip(ReadAll(path)).records[0].name, "my-model/data.pkl");
  ExpectRoundTrip(path, {t});
}

// tests/fuzz/seeds/fuzz_pth/tiny.pth was written by torch.save (tools/make_pth_golden.py) from a
// plain OrderedDict of two contiguous tensors: rewriting its tensors must reproduce its data.pkl
// and storages byte for byte.
TEST(PthWriter, PickleMatchesTorchSave) {
  const std::string golden_path =
      std::string(HERD_SOURCE_DIR) + "/tests/fuzz/seeds/fuzz_pth/tiny.pth";
  auto golden = LoadPth(golden_path);
  ASSERT_TRUE(golden.ok()) << golden.status().message();
  std::vector<TensorToWrite> tensors;
  for (const TensorEntry& e : golden->entries())
    tensors.push_back({e.name, e.dtype, e.shape, e.data, e.n_bytes});
  const fs::path path = TempDir("torch") / "tiny.pth";
  ASSERT_TRUE(WritePth(path, tensors).ok());
  const std::string golden_bytes = ReadAll(golden_path), bytes = ReadAll(path);
  auto want = zip::Archive::Parse(golden_bytes, golden_path);
  auto got = zip::Archive::Parse(bytes, path);
  ASSERT_TRUE(want.ok() && got.ok());
  for (const char* name :
       {"tiny/data.pkl", "tiny/byteorder", "tiny/data/0", "tiny/data/1", "tiny/version"}) {
    SCOPED_TRACE(name);
    ASSERT_NE(want->Find(name), nullptr);
    ASSERT_NE(got->Find(name), nullptr);
    EXPECT_EQ(*got->Data(*got->Find(name)), *want->Data(*want->Find(name)));
  }
}

TEST(PthWriter, ManyTensorsBatchAndLongMemo) {
  // 1001 tensors: a SETITEMS batch of 1000 then a lone SETITEM (CPython's batching), and memo
  // indices past 255 (LONG_BINPUT).
  std::vector<Owned> tensors;
  for (int i = 0; i < 1001; ++i)
    tensors.push_back(
        Make(fmt::format("layers.{}.w", i), i % 3 ? DType::kBF16 : DType::kI32, {i % 4 + 1}, i));
  const fs::path path = TempDir("many") / "consolidated.00.pth";
  ASSERT_TRUE(WritePth(path, Views(tensors)).ok());
  ExpectRoundTrip(path, tensors);
  const std::string bytes = ReadAll(path);
  const Walk w = WalkZip(bytes);
  const std::string pkl = bytes.substr(w.records[0].payload, w.records[0].size);
  // The last tensor is memoized with LONG_BINPUT, then a lone SETITEM, then STOP.
  EXPECT_EQ(pkl[pkl.size() - 7], 'r');
  EXPECT_EQ(pkl.substr(pkl.size() - 2), "s.");
  EXPECT_NE(pkl.find(std::string("r\x00\x01\x00\x00", 5)), std::string::npos);  // memo 256
  ExpectAlignedWithCrcs(bytes, w);
}

TEST(PthWriter, LargeIntsInSizesAndStrides) {
  // Empty tensors may have huge dims: 3e9 needs LONG1, 70000 BININT, 300 BININT2.
  const std::vector<Owned> tensors = {Make("e", DType::kF16, {0, 3'000'000'000}, 0),
                                      Make("f", DType::kU8, {2, 70'000, 0}, 1),
                                      Make("g", DType::kI8, {300}, 2)};
  const fs::path path = TempDir("ints") / "x.pth";
  ASSERT_TRUE(WritePth(path, Views(tensors)).ok());
  ExpectRoundTrip(path, tensors);
}

TEST(PthWriter, ForcedZip64EverywhereRoundTrips) {
  const fs::path path = TempDir("zip64") / "consolidated.00.pth";
  const std::vector<Owned> tensors = Sample();
  ASSERT_TRUE(WritePth(path, Views(tensors), PthWriteOptions{.zip64_limit = 0}).ok());
  ExpectRoundTrip(path, tensors);
  const std::string bytes = ReadAll(path);
  const Walk w = WalkZip(bytes);
  EXPECT_TRUE(w.zip64_end);
  EXPECT_TRUE(w.eocd_saturated);
  ASSERT_EQ(w.records.size(), tensors.size() + 3);
  for (const Record& r : w.records) {
    EXPECT_TRUE(r.central_zip64 && r.local_zip64) << r.name;
    EXPECT_EQ(r.local_version, 45) << r.name;
  }
  ExpectAlignedWithCrcs(bytes, w);
}

TEST(PthWriter, Zip64OnlyWhereTheLimitIsCrossed) {
  // With the limit at 2000 bytes: the 4000-byte storage gets ZIP64 sizes, entries whose local
  // header starts past 2000 get a ZIP64 offset, and the end records go ZIP64 for the directory
  // offset, while the entries before stay plain.
  const std::vector<Owned> tensors = {Make("small", DType::kF32, {4}, 0),
                                      Make("large", DType::kF32, {1000}, 1),
                                      Make("after", DType::kI64, {3}, 2)};
  const fs::path path = TempDir("zip64_mixed") / "m.pth";
  ASSERT_TRUE(WritePth(path, Views(tensors), PthWriteOptions{.zip64_limit = 2000}).ok());
  ExpectRoundTrip(path, tensors);
  const std::string bytes = ReadAll(path);
  const Walk w = WalkZip(bytes);
  ASSERT_EQ(Names(w), (std::vector<std::string>{"m/data.pkl", "m/byteorder", "m/data/0", "m/data/1",
                                                "m/data/2", "m/version"}));
  for (size_t i = 0; i < 3; ++i)
    EXPECT_FALSE(w.records[i].central_zip64 || w.records[i].local_zip64);
  EXPECT_TRUE(w.records[3].local_zip64 && w.records[3].central_zip64);  // m/data/1: 4000 bytes
  EXPECT_FALSE(w.records[4].local_zip64);
  EXPECT_TRUE(w.records[4].central_zip64);  // offset past 2000
  EXPECT_TRUE(w.records[5].central_zip64);
  EXPECT_TRUE(w.zip64_end);
  EXPECT_FALSE(w.eocd_saturated);  // the entry count still fits
  ExpectAlignedWithCrcs(bytes, w);
}

void ExpectNothingWritten(const fs::path& path) {
  EXPECT_FALSE(fs::exists(path)) << path;
  EXPECT_FALSE(fs::exists(path.string() + ".tmp")) << path;
}

void ExpectError(const Status& st, const std::string& substring) {
  ASSERT_FALSE(st.ok()) << "expected an error containing: " << substring;
  EXPECT_NE(st.message().find(substring), std::string::npos) << st.message();
}

TEST(PthWriter, InvalidTensorsAreRejectedBeforeWriting) {
  const fs::path path = TempDir("invalid") / "consolidated.00.pth";
  const Owned good = Make("good", DType::kBF16, {2, 3}, 0);
  TensorToWrite t = good.View();
  t.name = "bad";
  t.n_bytes = 13;
  ExpectError(WritePth(path, {good.View(), t}),
              "tensor 'bad': 13 bytes given, shape [2, 3] of bf16 needs 12");
  ExpectError(WritePth(path, {good.View(), good.View()}), "tensor 'good' is given twice");
  t = good.View();
  t.shape = {2, -3};
  ExpectError(WritePth(path, {t}), "negative dim");
  const std::string q8(34, '\0');  // one valid q8_0 block
  ExpectError(WritePth(path, {good.View(), {"quant", DType::kQ8_0, {32}, q8.data(), q8.size()}}),
              "tensor 'quant': dtype q8_0 cannot be stored in a .pth");
  ExpectNothingWritten(path);
}

TEST(PthWriter, UnwritablePathLeavesNothing) {
  const fs::path dir = TempDir("unwritable");
  const Owned t = Make("w", DType::kF32, {2}, 0);
  const fs::path missing = dir / "no_such_dir" / "consolidated.00.pth";
  ExpectError(WritePth(missing, {t.View()}), "consolidated.00.pth.tmp: cannot create");
  ExpectNothingWritten(missing);
  const fs::path occupied = dir / "occupied.pth";
  fs::create_directories(occupied / "child");
  ExpectError(WritePth(occupied, {t.View()}), "cannot rename");
  EXPECT_TRUE(fs::is_directory(occupied / "child"));
  EXPECT_FALSE(fs::exists(occupied.string() + ".tmp"));
}

// Leaves sample files for tools/check_pth_writer.py (which checks them with real torch and the
// safetensors package) when HERD_WRITE_SAMPLE_DIR is set; see Make() for the byte pattern.
TEST(WriterSamples, WriteWhenAsked) {
  const char* dir_env = std::getenv("HERD_WRITE_SAMPLE_DIR");
  if (!dir_env || !*dir_env) GTEST_SKIP() << "HERD_WRITE_SAMPLE_DIR is not set";
  const fs::path dir(dir_env);
  fs::create_directories(dir);
  const std::vector<Owned> sample = Sample();
  ASSERT_TRUE(WritePth(dir / "consolidated.00.pth", Views(sample)).ok());
  ASSERT_TRUE(WritePth(dir / "zip64.00.pth", Views(sample), {.zip64_limit = 0}).ok());
  std::vector<Owned> many;
  for (int i = 0; i < 1001; ++i) many.push_back(Make(fmt::format("t{}", i), DType::kF16, {2}, i));
  ASSERT_TRUE(WritePth(dir / "many.pth", Views(many)).ok());
  ASSERT_TRUE(WriteSafetensors(dir / "model.safetensors", Views(sample), {{"format", "pt"}}).ok());
  std::vector<Owned> no_bf16;  // safetensors.numpy cannot hold bf16
  for (const Owned& o : sample)
    if (o.dtype != DType::kBF16) no_bf16.push_back(o);
  ASSERT_TRUE(WriteSafetensors(dir / "numpy.safetensors", Views(no_bf16)).ok());

  // Real ZIP64: a 4.5 GiB storage (zero pages of an anonymous mapping: no memory is used) between
  // two small tensors, so sizes and offsets pass 4 GiB.
  if (!std::getenv("HERD_WRITE_LARGE_SAMPLE")) return;
  constexpr uint64_t kLarge = uint64_t{9} << 29;
  void* zeros =
      ::mmap(nullptr, kLarge, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  ASSERT_NE(zeros, MAP_FAILED);
  const Owned head = Make("head", DType::kU8, {16}, 0), tail = Make("tail", DType::kI32, {4}, 2);
  const Status st =
      WritePth(dir / "large.pth",
               {head.View(), {"zeros", DType::kU8, {int64_t{kLarge}}, zeros, kLarge}, tail.View()});
  ::munmap(zeros, kLarge);
  ASSERT_TRUE(st.ok()) << st.message();
  auto index = LoadPth(dir / "large.pth");
  ASSERT_TRUE(index.ok()) << index.status().message();
  ASSERT_EQ(index->size(), 3u);
  const TensorEntry& big = index->entries()[1];
  EXPECT_EQ(big.n_bytes, kLarge);
  EXPECT_EQ(big.data[0] | big.data[kLarge - 1], 0);
  const TensorEntry& last = index->entries()[2];
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(last.data), last.n_bytes), tail.bytes);
}

}  // namespace
}  // namespace herd
