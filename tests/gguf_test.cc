// Tests of the GGUF reader. Files are built here by a small little-endian byte writer that knows
// the format independently of the reader, so the tests check the reader against the spec, not
// against itself.
#include "io/gguf.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "test_util.h"

namespace herd::gguf {
namespace {

// GGUF value types as the spec numbers them (deliberately not the reader's enum).
enum : uint32_t {
  kU8 = 0,
  kI8 = 1,
  kU16 = 2,
  kI16 = 3,
  kU32 = 4,
  kI32 = 5,
  kF32 = 6,
  kBool = 7,
  kStr = 8,
  kArr = 9,
  kU64 = 10,
  kI64 = 11,
  kF64 = 12,
};
constexpr uint32_t kGgmlF32 = 0, kGgmlF16 = 1, kGgmlQ4_0 = 2, kGgmlQ8_0 = 8, kGgmlQ4_K = 12,
                   kGgmlBF16 = 30;

// Little-endian byte writer with a few GGUF-shaped helpers.
class Writer {
 public:
  template <typename T>
  Writer& Put(T v) {
    char b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    bytes_.append(b, sizeof(T));
    return *this;
  }
  Writer& U8(uint8_t v) { return Put(v); }
  Writer& U32(uint32_t v) { return Put(v); }
  Writer& U64(uint64_t v) { return Put(v); }
  Writer& Raw(std::string_view s) {
    bytes_.append(s);
    return *this;
  }
  Writer& Str(std::string_view s) { return U64(s.size()).Raw(s); }

  Writer& Header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    return Raw("GGUF").U32(version).U64(n_tensors).U64(n_kv);
  }
  // key | type | value, for a scalar given as its raw little-endian bytes.
  template <typename T>
  Writer& Kv(std::string_view key, uint32_t type, T v) {
    return Str(key).U32(type).Put(v);
  }
  Writer& KvStr(std::string_view key, std::string_view v) { return Str(key).U32(kStr).Str(v); }
  Writer& KvArrayHeader(std::string_view key, uint32_t elem_type, uint64_t n) {
    return Str(key).U32(kArr).U32(elem_type).U64(n);
  }
  Writer& TensorInfo(std::string_view name, const std::vector<uint64_t>& dims, uint32_t type,
                     uint64_t offset) {
    Str(name).U32(static_cast<uint32_t>(dims.size()));
    for (uint64_t d : dims) U64(d);
    return U32(type).U64(offset);
  }
  Writer& PadTo(size_t alignment) {
    while (bytes_.size() % alignment != 0) bytes_.push_back('\0');
    return *this;
  }
  // `n` bytes of data with a recognisable pattern: byte k is (k + seed) & 0xff.
  Writer& Data(size_t n, uint8_t seed) {
    for (size_t k = 0; k < n; ++k) bytes_.push_back(static_cast<char>((k + seed) & 0xff));
    return *this;
  }

  size_t size() const { return bytes_.size(); }
  const std::string& bytes() const { return bytes_; }

 private:
  std::string bytes_;
};

Result<File> ParseW(const Writer& w) { return File::ParseBytes(w.bytes(), "test.gguf"); }

// Expects a parse error whose message contains each of `parts` (and always the file name).
void ExpectError(const Writer& w, const std::vector<std::string>& parts) {
  auto f = ParseW(w);
  ASSERT_FALSE(f.ok()) << "parsed a malformed file";
  const std::string msg = f.status().message();
  EXPECT_NE(msg.find("test.gguf: "), std::string::npos) << msg;
  for (const auto& p : parts)
    EXPECT_NE(msg.find(p), std::string::npos) << "missing '" << p << "' in: " << msg;
}

// A small valid file with every kind of value and two tensors whose data ends exactly at EOF, so
// that every proper prefix is invalid.
Writer SmallValidFile() {
  Writer w;
  w.Header(/*n_tensors=*/2, /*n_kv=*/6);
  w.KvStr("general.architecture", "llama");
  w.Kv("llama.block_count", kU32, uint32_t{2});
  w.Kv("llama.rope.freq_base", kF32, 500000.0f);
  w.KvArrayHeader("tokenizer.ggml.tokens", kStr, 3).Str("a").Str("").Str("\xff\xfe");
  w.KvArrayHeader("tokenizer.ggml.token_type", kI32, 3)
      .Put(int32_t{1})
      .Put(int32_t{-1})
      .Put(int32_t{3});
  w.Kv("general.flag", kBool, uint8_t{1});
  w.TensorInfo("a", {4, 2}, kGgmlF32, 0);
  w.TensorInfo("b", {32}, kGgmlQ8_0, 32);
  w.PadTo(32).Data(32, 0).Data(34, 100);
  return w;
}

TEST(Gguf, EveryScalarType) {
  Writer w;
  w.Header(0, 13);
  w.Kv("u8", kU8, uint8_t{250});
  w.Kv("i8", kI8, int8_t{-100});
  w.Kv("u16", kU16, uint16_t{65000});
  w.Kv("i16", kI16, int16_t{-30000});
  w.Kv("u32", kU32, uint32_t{4000000000u});
  w.Kv("i32", kI32, int32_t{-2000000000});
  w.Kv("f32", kF32, 1.5f);
  w.Kv("bool_t", kBool, uint8_t{1});
  w.KvStr("str", "hello \xe2\x9c\x93");
  w.Kv("u64", kU64, uint64_t{18000000000000000000ull});
  w.Kv("i64", kI64, int64_t{-9000000000000000000ll});
  w.Kv("f64", kF64, -2.25);
  w.Kv("bool_f", kBool, uint8_t{0});
  auto f = ParseW(w);
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->metadata().size(), 13u);
  EXPECT_EQ(f->metadata()[0].first, "u8");
  EXPECT_TRUE(f->tensors().empty());

  EXPECT_EQ(f->Find("u8")->type, ValueType::kUint8);
  EXPECT_EQ(*f->GetUint("u8"), 250u);
  EXPECT_EQ(f->Find("i8")->i, -100);
  EXPECT_EQ(f->Find("i8")->type, ValueType::kInt8);
  EXPECT_EQ(*f->GetUint("u16"), 65000u);
  EXPECT_EQ(f->Find("i16")->i, -30000);
  EXPECT_EQ(*f->GetUint("u32"), 4000000000u);
  EXPECT_EQ(f->Find("i32")->i, -2000000000);
  EXPECT_EQ(*f->GetFloat("f32"), 1.5);
  EXPECT_EQ(f->Find("bool_t")->type, ValueType::kBool);
  EXPECT_EQ(f->Find("bool_t")->i, 1);
  EXPECT_EQ(f->Find("bool_f")->i, 0);
  EXPECT_EQ(*f->GetString("str"), "hello \xe2\x9c\x93");
  EXPECT_EQ(*f->GetUint("u64"), 18000000000000000000ull);
  EXPECT_EQ(f->Find("i64")->i, -9000000000000000000ll);
  EXPECT_EQ(*f->GetFloat("f64"), -2.25);
  EXPECT_EQ(f->Find("missing"), nullptr);

  // Getter errors name the key and both types.
  auto s = f->GetString("u8");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("'u8' has type uint8, expected string"), std::string::npos)
      << s.status().message();
  EXPECT_FALSE(f->GetUint("i8").ok());  // negative
  EXPECT_NE(f->GetUint("i8").status().message().find("negative"), std::string::npos);
  EXPECT_FALSE(f->GetUint("f32").ok());
  EXPECT_FALSE(f->GetFloat("u32").ok());
  auto missing = f->GetUint("nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("'nope' not found"), std::string::npos);
  EXPECT_EQ(std::string(ValueTypeName(ValueType::kFloat64)), "float64");
}

TEST(Gguf, Arrays) {
  Writer w;
  w.Header(0, 8);
  w.KvArrayHeader("strs", kStr, 3).Str("one").Str("").Str("three");
  w.KvArrayHeader("u8s", kU8, 3).U8(0).U8(7).U8(255);
  w.KvArrayHeader("i32s", kI32, 2).Put(int32_t{-5}).Put(int32_t{6});
  w.KvArrayHeader("u64s", kU64, 1).U64(1ull << 40);
  w.KvArrayHeader("bools", kBool, 2).U8(1).U8(0);
  w.KvArrayHeader("f32s", kF32, 2).Put(0.5f).Put(-1.0f);
  w.KvArrayHeader("f64s", kF64, 1).Put(3.25);
  w.KvArrayHeader("empty", kStr, 0);
  auto f = ParseW(w);
  ASSERT_TRUE(f.ok()) << f.status().message();

  auto strs = f->GetStringArray("strs");
  ASSERT_TRUE(strs.ok());
  EXPECT_EQ(**strs, (std::vector<std::string_view>{"one", "", "three"}));
  EXPECT_EQ(f->Find("strs")->array_size(), 3u);
  EXPECT_EQ(f->Find("strs")->elem_type, ValueType::kString);
  EXPECT_EQ(**f->GetIntArray("u8s"), (std::vector<int64_t>{0, 7, 255}));
  EXPECT_EQ(**f->GetIntArray("i32s"), (std::vector<int64_t>{-5, 6}));
  EXPECT_EQ(**f->GetIntArray("u64s"), (std::vector<int64_t>{int64_t{1} << 40}));
  EXPECT_EQ(**f->GetIntArray("bools"), (std::vector<int64_t>{1, 0}));
  EXPECT_EQ(**f->GetFloatArray("f32s"), (std::vector<double>{0.5, -1.0}));
  EXPECT_EQ(**f->GetFloatArray("f64s"), (std::vector<double>{3.25}));
  EXPECT_TRUE((*f->GetStringArray("empty"))->empty());
  EXPECT_EQ(f->Find("empty")->array_size(), 0u);

  auto wrong = f->GetIntArray("strs");
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("array of string"), std::string::npos)
      << wrong.status().message();
  EXPECT_FALSE(f->GetFloatArray("i32s").ok());
  EXPECT_FALSE(f->GetStringArray("f32s").ok());
  EXPECT_FALSE(f->GetString("strs").ok());
}

TEST(Gguf, NestedArrayOfDepthTwoIsSkipped) {
  Writer w;
  w.Header(0, 2);
  w.KvArrayHeader("nested", kArr, 2);
  w.U32(kStr).U64(2).Str("x").Str("yz");
  w.U32(kU16).U64(3).Put(uint16_t{1}).Put(uint16_t{2}).Put(uint16_t{3});
  w.Kv("after", kU32, uint32_t{42});
  auto f = ParseW(w);
  ASSERT_TRUE(f.ok()) << f.status().message();
  const Value* v = f->Find("nested");
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->type, ValueType::kArray);
  EXPECT_EQ(v->elem_type, ValueType::kArray);
  EXPECT_EQ(v->array_size(), 2u);
  EXPECT_EQ(*f->GetUint("after"), 42u);
}

TEST(Gguf, TensorsWithDefaultAlignment) {
  Writer w = SmallValidFile();
  auto f = ParseW(w);
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(f->alignment(), 32u);
  EXPECT_EQ(f->data_offset() % 32, 0u);
  EXPECT_EQ(f->data_offset(), w.size() - 66);
  ASSERT_EQ(f->tensors().size(), 2u);
  const TensorInfo& a = f->tensors()[0];
  EXPECT_EQ(a.name, "a");
  EXPECT_EQ(a.dims, (std::vector<uint64_t>{4, 2}));
  EXPECT_EQ(a.ggml_type, kGgmlF32);
  EXPECT_EQ(a.n_bytes, 32u);
  ASSERT_NE(a.data, nullptr);
  EXPECT_EQ(a.data[0], 0);
  EXPECT_EQ(a.data[31], 31);
  const TensorInfo& b = f->tensors()[1];
  EXPECT_EQ(b.n_bytes, 34u);
  EXPECT_EQ(b.offset, 32u);
  EXPECT_EQ(b.data, a.data + 32);
  EXPECT_EQ(b.data[0], 100);
  EXPECT_EQ(b.data[33], 133);
  EXPECT_EQ(**f->GetStringArray("tokenizer.ggml.tokens"),
            (std::vector<std::string_view>{"a", "", "\xff\xfe"}));
  EXPECT_EQ(**f->GetIntArray("tokenizer.ggml.token_type"), (std::vector<int64_t>{1, -1, 3}));
}

TEST(Gguf, TensorSizesOfKnownAndUnknownTypes) {
  struct Case {
    uint32_t type;
    std::vector<uint64_t> dims;
    uint64_t n_bytes;
  };
  const std::vector<Case> cases = {
      {kGgmlF16, {3, 5}, 30},         {kGgmlBF16, {7}, 14},        {kGgmlQ4_0, {64, 2}, 4 * 18},
      {kGgmlQ4_K, {512}, 288},        {kGgmlF32, {}, 4},           {kGgmlF32, {2, 0, 3}, 0},
      {28 /*f64*/, {1, 1, 1, 3}, 24}, {99 /*unknown*/, {5, 5}, 0},
  };
  Writer w;
  w.Header(cases.size(), 0);
  for (size_t k = 0; k < cases.size(); ++k) {
    w.TensorInfo("t" + std::to_string(k), cases[k].dims, cases[k].type, 320 * k);
  }
  w.PadTo(32).Data(320 * cases.size(), 0);
  auto f = ParseW(w);
  ASSERT_TRUE(f.ok()) << f.status().message();
  ASSERT_EQ(f->tensors().size(), cases.size());
  for (size_t k = 0; k < cases.size(); ++k) {
    const TensorInfo& t = f->tensors()[k];
    EXPECT_EQ(t.n_bytes, cases[k].n_bytes) << "tensor " << k;
    EXPECT_EQ(t.data, f->tensors()[0].data + 320 * k) << "tensor " << k;
  }
  EXPECT_NE(FindGgmlType(kGgmlQ8_0), nullptr);
  EXPECT_EQ(FindGgmlType(kGgmlQ8_0)->block_size, 32u);
  EXPECT_EQ(FindGgmlType(kGgmlQ8_0)->type_size, 34u);
  EXPECT_EQ(FindGgmlType(99), nullptr);
}

TEST(Gguf, CustomAlignment) {
  for (uint32_t alignment : {1u, 8u, 64u, 4096u}) {
    Writer w;
    w.Header(2, 1);
    w.Kv("general.alignment", kU32, alignment);
    w.TensorInfo("x", {3}, kGgmlF32, 0);
    w.TensorInfo("y", {2}, kGgmlF16, ((12 + alignment - 1) / alignment) * alignment);
    w.PadTo(alignment).Data(12, 1).PadTo(alignment).Data(4, 50);
    auto f = ParseW(w);
    ASSERT_TRUE(f.ok()) << f.status().message();
    EXPECT_EQ(f->alignment(), alignment);
    EXPECT_EQ(f->data_offset() % alignment, 0u);
    EXPECT_EQ(f->data_offset() + f->tensors()[1].offset + 4, w.size());
    EXPECT_EQ(f->tensors()[0].data[0], 1);
    EXPECT_EQ(f->tensors()[1].data[0], 50);
  }
}

TEST(Gguf, Version2) {
  Writer w;
  w.Header(0, 1, /*version=*/2);
  w.KvStr("general.name", "v2");
  auto f = ParseW(w);
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(f->version(), 2u);
  EXPECT_EQ(*f->GetString("general.name"), "v2");
}

TEST(Gguf, ViewsSurviveMovingTheFile) {
  Writer w;  // small enough for the string's inline buffer, where a move would relocate the bytes
  w.Header(0, 1).KvStr("k", "v");
  auto parsed = ParseW(w);
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  File moved = std::move(parsed).value();
  File again = std::move(moved);
  EXPECT_EQ(*again.GetString("k"), "v");
  EXPECT_EQ(again.path(), "test.gguf");
}

TEST(Gguf, OpenFromDisk) {
  std::string path = ::testing::TempDir() + "/herd_gguf_test.gguf";
  Writer w = SmallValidFile();
  {
    std::ofstream out(path, std::ios::binary);
    out.write(w.bytes().data(), static_cast<std::streamsize>(w.size()));
  }
  auto f = File::Open(path);
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(f->path(), path);
  EXPECT_EQ(f->tensors().size(), 2u);
  EXPECT_EQ(f->tensors()[1].data[33], 133);
  std::filesystem::remove(path);

  auto missing = File::Open(path);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find(path), std::string::npos);
}

// ---- Malformed files ----

TEST(GgufMalformed, BadMagic) {
  Writer w;
  w.Raw("GGML").U32(3).U64(0).U64(0);
  ExpectError(w, {"offset 0", "bad magic"});
  ExpectError(Writer().Raw("GG"), {"too short"});
  ExpectError(Writer(), {"too short"});
}

TEST(GgufMalformed, UnsupportedVersions) {
  ExpectError(Writer().Header(0, 0, 1), {"offset 4", "version 1 is not supported"});
  ExpectError(Writer().Header(0, 0, 4), {"offset 4", "unsupported GGUF version 4"});
  ExpectError(Writer().Header(0, 0, 0x03000000), {"big-endian"});
}

TEST(GgufMalformed, EveryTruncation) {
  const Writer full = SmallValidFile();
  ASSERT_TRUE(ParseW(full).ok());
  for (size_t n = 0; n < full.size(); ++n) {
    Writer w;
    w.Raw(std::string_view(full.bytes()).substr(0, n));
    auto f = ParseW(w);
    EXPECT_FALSE(f.ok()) << "prefix of " << n << " bytes parsed";
    if (!f.ok()) {
      EXPECT_EQ(f.status().message().rfind("test.gguf: ", 0), 0u) << f.status().message();
    }
  }
}

TEST(GgufMalformed, HugeCounts) {
  ExpectError(Writer().Header(0, 1ull << 60),
              {"offset 16", "metadata count 1152921504606846976 exceeds file size"});
  ExpectError(Writer().Header(1ull << 60, 0), {"offset 8", "tensor count", "exceeds file size"});
  ExpectError(Writer().Header(0, ~0ull), {"exceeds file size"});
  // Arrays of every element type with a 2^60 count.
  for (uint32_t elem = 0; elem <= 12; ++elem) {
    Writer w;
    w.Header(0, 1).KvArrayHeader("arr", elem, 1ull << 60).U64(0);
    ExpectError(w, {"offset 39", "array of 1152921504606846976", "exceeds file size", "key 'arr'"});
  }
  Writer w;
  w.Header(0, 1).KvArrayHeader("arr", kStr, 99999999999ull).Str("x");
  ExpectError(w, {"array of 99999999999 strings exceeds file size"});
}

TEST(GgufMalformed, HugeStringLengths) {
  ExpectError(Writer().Header(0, 1).U64(1ull << 62).Raw("key").U32(0).U8(0),
              {"offset 24", "metadata key of 4611686018427387904 bytes exceeds file size"});
  ExpectError(Writer().Header(0, 1).Str("k").U32(kStr).U64(~0ull).Raw("abc"),
              {"offset 37", "string of", "exceeds file size", "key 'k'"});
  ExpectError(Writer().Header(1, 0).U64(1000).Raw("name").U32(1).U64(1).U32(0).U64(0),
              {"offset 24", "tensor name of 1000 bytes"});
  // Inside an array of strings.
  Writer w;
  w.Header(0, 1).KvArrayHeader("arr", kStr, 2).Str("ok").U64(1ull << 40);
  ExpectError(w, {"string of 1099511627776 bytes exceeds file size"});
}

TEST(GgufMalformed, BadValueTypes) {
  ExpectError(Writer().Header(0, 1).Str("k").U32(13).U32(0),
              {"offset 33", "invalid value type 13", "key 'k'"});
  ExpectError(Writer().Header(0, 1).Str("k").U32(0xffffffffu).U32(0),
              {"invalid value type 4294967295"});
  ExpectError(Writer().Header(0, 1).KvArrayHeader("k", 13, 0),
              {"offset 37", "invalid array element type 13"});
}

TEST(GgufMalformed, NestedArrayDepth) {
  Writer w;
  w.Header(0, 1).KvArrayHeader("deep", kArr, 1);
  w.U32(kArr).U64(1);  // depth 2 holding arrays: depth 3
  w.U32(kU8).U64(0);
  ExpectError(w, {"nested deeper than 2", "key 'deep'"});
  // An inner array whose count exceeds the file.
  Writer v;
  v.Header(0, 1).KvArrayHeader("n", kArr, 1).U32(kU32).U64(1ull << 50);
  ExpectError(v, {"array of 1125899906842624 uint32s exceeds file size"});
  // A 2^60-long array of (empty) arrays.
  Writer u;
  u.Header(0, 1).KvArrayHeader("n", kArr, 1ull << 60).U32(kU8).U64(0);
  ExpectError(u, {"array of 1152921504606846976 arrays exceeds file size"});
}

TEST(GgufMalformed, TooManyDims) {
  Writer w;
  w.Header(1, 0).TensorInfo("t", {1, 1, 1, 1, 1}, kGgmlF32, 0).PadTo(32).Data(4, 0);
  ExpectError(w, {"5 dimensions", "tensor info 0 't'"});
}

TEST(GgufMalformed, TensorDataPastEof) {
  Writer w;
  w.Header(1, 0).TensorInfo("t", {16}, kGgmlF32, 0).PadTo(32).Data(63, 0);
  ExpectError(
      w, {"offset 24", "tensor 't'", "64 bytes of data at file offset 64 extend past the end"});
  Writer v;
  v.Header(1, 0).TensorInfo("t", {1}, kGgmlF32, 1ull << 40).PadTo(32).Data(4, 0);
  ExpectError(v, {"tensor 't'", "lies past the end"});
  Writer u;  // an unknown type still needs its offset inside the file
  u.Header(1, 0).TensorInfo("t", {1}, 77, 64).PadTo(32).Data(32, 0);
  ExpectError(u, {"lies past the end"});
  Writer t;  // infos end the file: the data section starts past EOF
  t.Header(1, 0).TensorInfo("t", {1}, kGgmlF32, 0);
  ExpectError(t, {"lies past the end"});
}

TEST(GgufMalformed, BadDims) {
  Writer w;
  w.Header(1, 0).TensorInfo("t", {1ull << 63}, kGgmlF32, 0).PadTo(32).Data(4, 0);
  ExpectError(w, {"out of range"});
  Writer v;
  v.Header(1, 0).TensorInfo("t", {1ull << 32, 1ull << 32}, kGgmlF32, 0).PadTo(32).Data(4, 0);
  ExpectError(v, {"element count overflows"});
  Writer u;
  u.Header(1, 0).TensorInfo("t", {1ull << 62}, kGgmlF32, 0).PadTo(32).Data(4, 0);
  ExpectError(u, {"byte size overflows"});
  Writer s;
  s.Header(1, 0).TensorInfo("t", {33}, kGgmlQ8_0, 0).PadTo(32).Data(64, 0);
  ExpectError(s, {"row length 33 is not a multiple of the q8_0 block size 32"});
}

TEST(GgufMalformed, MisalignedOffset) {
  Writer w;
  w.Header(1, 0).TensorInfo("t", {1}, kGgmlF32, 4).PadTo(32).Data(8, 0);
  ExpectError(w, {"offset 24", "data offset 4 is not a multiple of the alignment 32"});
  Writer v;
  v.Header(1, 1).Kv("general.alignment", kU32, uint32_t{8});
  v.TensorInfo("t", {1}, kGgmlF32, 12).PadTo(8).Data(16, 0);
  ExpectError(v, {"not a multiple of the alignment 8"});
}

TEST(GgufMalformed, BadAlignment) {
  for (uint32_t a : {0u, 3u, 48u, 0xffffffffu}) {
    Writer w;
    w.Header(0, 1).Kv("general.alignment", kU32, a);
    ExpectError(
        w, {"offset 24", "general.alignment = " + std::to_string(a) + " is not a power of two"});
  }
  Writer w;
  w.Header(0, 1).Kv("general.alignment", kU64, uint64_t{32});
  ExpectError(w, {"general.alignment has type uint64, expected uint32"});
}

TEST(GgufMalformed, DuplicateKeyOrTensorName) {
  Writer w;
  w.Header(0, 2).Kv("k", kU8, uint8_t{1}).Kv("k", kU8, uint8_t{2});
  ExpectError(w, {"offset 38", "duplicate metadata key 'k'"});
  Writer v;
  v.Header(2, 0).TensorInfo("t", {1}, kGgmlF32, 0).TensorInfo("t", {1}, kGgmlF32, 32);
  v.PadTo(32).Data(36, 0);
  ExpectError(v, {"duplicate tensor name 't'"});
}

TEST(GgufMalformed, UnprintableKeysAreEscapedInMessages) {
  Writer w;
  w.Header(0, 2).Kv(std::string_view("\x01\xff", 2), kU8, uint8_t{1});
  w.Kv(std::string_view("\x01\xff", 2), kU8, uint8_t{1});
  ExpectError(w, {"duplicate metadata key '\\x01\\xff'"});
}

// A real tokenizer GGUF, produced by another tool (tests/data/tokenizer/).
TEST(Gguf, RealTokenizerFile) {
  // The committed tokenizer-only GGUF (tools/make_tokenizer_fixtures.py, written by the gguf
  // package).
  const std::string path = herd::testing::XzFixture("tokenizer/llama3-tokenizer.gguf");
  ASSERT_FALSE(path.empty());
  auto f = File::Open(path);
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_GE(f->version(), 2u);
  auto tokens = f->GetStringArray("tokenizer.ggml.tokens");
  ASSERT_TRUE(tokens.ok()) << tokens.status().message();
  EXPECT_GT((*tokens)->size(), 1000u);
  if (f->Find("tokenizer.ggml.token_type") != nullptr) {
    auto types = f->GetIntArray("tokenizer.ggml.token_type");
    ASSERT_TRUE(types.ok()) << types.status().message();
    EXPECT_EQ((*types)->size(), (*tokens)->size());
  }
  auto model = f->GetString("tokenizer.ggml.model");
  ASSERT_TRUE(model.ok()) << model.status().message();
  EXPECT_EQ(*model, "gpt2");
  for (const TensorInfo& t : f->tensors()) {
    if (t.n_bytes > 0) {
      EXPECT_NE(t.data, nullptr) << t.name;
    }
  }
}

}  // namespace
}  // namespace herd::gguf
