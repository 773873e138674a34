// safetensors reader: files written by a tiny independent writer below, a golden written by the
// official Python package (tools/make_safetensors_golden.py), sharded directories, and a matrix of
// malformed inputs, each of which must give a one-line error naming the file, never a crash.
#include "io/safetensors.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "test_util.h"

namespace herd {
namespace {

namespace fs = std::filesystem;

// ---- A tiny writer, independent of the reader: JSON header by hand, then the bytes. ----

struct RawTensor {
  std::string name;
  std::string dtype;  // safetensors spelling: "F32", "BF16", ...
  std::vector<int64_t> shape;
  std::string bytes;
};

template <typename T>
std::string BytesOf(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

std::string U64(uint64_t n) {
  std::string s(8, '\0');
  std::memcpy(s.data(), &n, 8);
  return s;
}

// Wraps a header and a data buffer: u64 length, header, data.
std::string Frame(const std::string& header, const std::string& data) {
  return U64(header.size()) + header + data;
}

// Lays the tensors out back to back and writes a header with a metadata entry; the header is padded
// with spaces to a multiple of 8 as the official writer does.
std::string Write(const std::vector<RawTensor>& tensors) {
  std::string header = R"({"__metadata__":{"format":"pt"})";
  std::string data;
  for (const RawTensor& t : tensors) {
    std::string shape;
    for (size_t i = 0; i < t.shape.size(); ++i) {
      if (i > 0) shape += ',';
      shape += std::to_string(t.shape[i]);
    }
    header += ",\"" + t.name + "\":{\"dtype\":\"" + t.dtype + "\",\"shape\":[" + shape +
              "],\"data_offsets\":[" + std::to_string(data.size()) + "," +
              std::to_string(data.size() + t.bytes.size()) + "]}";
    data += t.bytes;
  }
  header += "}";
  header.append((8 - (8 + header.size()) % 8) % 8, ' ');
  return Frame(header, data);
}

void WriteFile(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

Result<TensorIndex> Parse(const std::string& bytes, const std::string& name = "t.safetensors") {
  return ParseSafetensors(std::make_shared<const std::string>(bytes), name);
}

// A fresh empty directory under the test temp dir.
fs::path TempDir(const std::string& name) {
  fs::path dir = fs::path(::testing::TempDir()) / ("herd_safetensors_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// Decoders for checking values, written from the formats' definitions.
double F16ToDouble(uint16_t h) {
  const int exp = (h >> 10) & 0x1f;
  const int mant = h & 0x3ff;
  const double sign = (h & 0x8000) ? -1.0 : 1.0;
  if (exp == 0) return sign * std::ldexp(mant, -24);
  return sign * std::ldexp(1024 + mant, exp - 25);
}

double Bf16ToDouble(uint16_t b) { return std::bit_cast<float>(static_cast<uint32_t>(b) << 16); }

template <typename T>
T At(const TensorEntry& e, size_t i) {
  T v;
  std::memcpy(&v, e.data + i * sizeof(T), sizeof(T));
  return v;
}

// The small valid file the malformed tests start from: three tensors of different dtypes.
std::string SmallFile() {
  return Write({{"a", "F32", {2, 2}, BytesOf(std::vector<float>{1, 2, 3, 4})},
                {"b", "BF16", {3}, BytesOf(std::vector<uint16_t>{0x3f80, 0x4000, 0xc040})},
                {"c", "I64", {1}, BytesOf(std::vector<int64_t>{-7})}});
}

// One tensor "x" with a hand-written entry, and `data` as the data buffer.
std::string OneEntry(const std::string& entry, const std::string& data = std::string(16, '\0')) {
  return Frame("{\"x\":" + entry + "}", data);
}

void ExpectError(const Result<TensorIndex>& r, const std::string& substring) {
  ASSERT_FALSE(r.ok()) << "expected an error containing: " << substring;
  EXPECT_NE(r.status().message().find(substring), std::string::npos) << r.status().message();
  EXPECT_EQ(r.status().message().find('\n'), std::string::npos) << r.status().message();
}

// ---- Valid files ----

TEST(Safetensors, DTypesShapesPointersAndValues) {
  const std::vector<float> f32 = {1.5f, -2.25f, 0.0f, 1e30f, -1e-30f, 3.0f};
  const std::vector<uint16_t> f16 = {0x3c00, 0xc000, 0x0001, 0x7bff};  // 1, -2, 2^-24, 65504
  const std::vector<uint16_t> bf16 = {0x3f80, 0xc2f7, 0x0000};         // 1, -123.5, 0
  const std::vector<int64_t> i64 = {0, -1, int64_t{1} << 62, -(int64_t{1} << 40)};
  const std::string bytes = Write({{"w.f32", "F32", {2, 3}, BytesOf(f32)},
                                   {"w.f16", "F16", {2, 2}, BytesOf(f16)},
                                   {"w.bf16", "BF16", {3}, BytesOf(bf16)},
                                   {"w.i64", "I64", {4, 1}, BytesOf(i64)}});
  const fs::path path = TempDir("dtypes") / "model.safetensors";
  WriteFile(path, bytes);
  auto r = LoadSafetensors(path.string());
  ASSERT_TRUE(r.ok()) << r.status().message();
  const TensorIndex& index = *r;
  ASSERT_EQ(index.size(), 4u);
  // Index order is data-offset order, which Write made the order above.
  EXPECT_EQ(index.entries()[0].name, "w.f32");
  EXPECT_EQ(index.entries()[3].name, "w.i64");

  const TensorEntry* e = index.Find("w.f32");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->dtype, DType::kF32);
  EXPECT_EQ(e->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(e->numel(), 6);
  EXPECT_EQ(e->n_bytes, 24u);
  EXPECT_EQ(e->file, path.string());
  for (size_t i = 0; i < f32.size(); ++i) EXPECT_EQ(At<float>(*e, i), f32[i]);

  e = index.Find("w.f16");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->dtype, DType::kF16);
  EXPECT_EQ(e->n_bytes, 8u);
  EXPECT_EQ(F16ToDouble(At<uint16_t>(*e, 0)), 1.0);
  EXPECT_EQ(F16ToDouble(At<uint16_t>(*e, 1)), -2.0);
  EXPECT_EQ(F16ToDouble(At<uint16_t>(*e, 2)), std::ldexp(1.0, -24));
  EXPECT_EQ(F16ToDouble(At<uint16_t>(*e, 3)), 65504.0);

  e = index.Find("w.bf16");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->dtype, DType::kBF16);
  EXPECT_EQ(e->shape, (std::vector<int64_t>{3}));
  EXPECT_EQ(Bf16ToDouble(At<uint16_t>(*e, 0)), 1.0);
  EXPECT_EQ(Bf16ToDouble(At<uint16_t>(*e, 1)), -123.5);

  e = index.Find("w.i64");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->dtype, DType::kI64);
  for (size_t i = 0; i < i64.size(); ++i) EXPECT_EQ(At<int64_t>(*e, i), i64[i]);
}

TEST(Safetensors, DataPointsIntoTheBufferWithoutCopying) {
  const std::string bytes = SmallFile();
  auto owned = std::make_shared<const std::string>(bytes);
  auto r = ParseSafetensors(owned, "mem");
  ASSERT_TRUE(r.ok()) << r.status().message();
  const auto* base = reinterpret_cast<const uint8_t*>(owned->data());
  uint64_t header_len;
  std::memcpy(&header_len, base, 8);
  const TensorEntry* a = r->Find("a");
  const TensorEntry* b = r->Find("b");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->data, base + 8 + header_len);
  EXPECT_EQ(b->data, base + 8 + header_len + 16);
  // The index keeps the bytes alive after the caller lets go.
  owned.reset();
  EXPECT_EQ(At<float>(*r->Find("a"), 3), 4.0f);
  EXPECT_EQ(At<int64_t>(*r->Find("c"), 0), -7);
}

TEST(Safetensors, AllDTypesMap) {
  const std::vector<std::pair<std::string, DType>> cases = {
      {"F64", DType::kF64}, {"F32", DType::kF32},  {"F16", DType::kF16}, {"BF16", DType::kBF16},
      {"I64", DType::kI64}, {"I32", DType::kI32},  {"I16", DType::kI16}, {"I8", DType::kI8},
      {"U8", DType::kU8},   {"BOOL", DType::kBool}};
  for (const auto& [name, dtype] : cases) {
    const uint64_t size = Info(dtype).block_bytes * 3;
    auto r = Parse(Write({{"t", name, {3}, std::string(size, '\1')}}));
    ASSERT_TRUE(r.ok()) << name << ": " << r.status().message();
    EXPECT_EQ(r->Find("t")->dtype, dtype) << name;
    EXPECT_EQ(r->Find("t")->n_bytes, size) << name;
  }
}

TEST(Safetensors, ZeroElementAndScalarTensors) {
  auto r = Parse(Write({{"empty", "F32", {0, 4096}, ""},
                        {"scalar", "F64", {}, BytesOf(std::vector<double>{2.5})},
                        {"empty2", "BF16", {3, 0}, ""}}));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->Find("empty")->numel(), 0);
  EXPECT_EQ(r->Find("empty")->n_bytes, 0u);
  EXPECT_EQ(r->Find("empty")->shape, (std::vector<int64_t>{0, 4096}));
  EXPECT_EQ(r->Find("scalar")->numel(), 1);
  EXPECT_TRUE(r->Find("scalar")->shape.empty());
  EXPECT_EQ(At<double>(*r->Find("scalar"), 0), 2.5);
  EXPECT_EQ(r->Find("empty2")->n_bytes, 0u);
}

TEST(Safetensors, EmptyHeaderObjectAndMetadataOnly) {
  auto r = Parse(Frame("{}", ""));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->size(), 0u);
  r = Parse(Frame(R"({"__metadata__":{"k":"v"}}  )", ""));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->size(), 0u);
}

// Written by the official safetensors package; values listed in small.json by the same script.
TEST(Safetensors, GoldenFromOfficialWriter) {
  auto r = LoadSafetensors(testing::SourcePath("tests/golden/io/small.safetensors"));
  ASSERT_TRUE(r.ok()) << r.status().message();
  std::ifstream in(testing::SourcePath("tests/golden/io/small.json"));
  ASSERT_TRUE(in) << "missing tests/golden/io/small.json";
  const nlohmann::json golden = nlohmann::json::parse(in);
  const auto& tensors = golden.at("tensors");
  ASSERT_EQ(r->size(), tensors.size());
  for (const auto& g : tensors) {
    const std::string name = g.at("name").get<std::string>();
    SCOPED_TRACE(name);
    const TensorEntry* e = r->Find(name);
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->shape, g.at("shape").get<std::vector<int64_t>>());
    const std::vector<double> values = g.at("values").get<std::vector<double>>();
    ASSERT_EQ(static_cast<size_t>(e->numel()), values.size());
    const std::string dtype = g.at("dtype").get<std::string>();
    for (size_t i = 0; i < values.size(); ++i) {
      double got = 0;
      if (dtype == "F32") {
        EXPECT_EQ(e->dtype, DType::kF32);
        got = At<float>(*e, i);
      } else if (dtype == "F16") {
        EXPECT_EQ(e->dtype, DType::kF16);
        got = F16ToDouble(At<uint16_t>(*e, i));
      } else if (dtype == "BF16") {
        EXPECT_EQ(e->dtype, DType::kBF16);
        got = Bf16ToDouble(At<uint16_t>(*e, i));
      } else if (dtype == "I64") {
        EXPECT_EQ(e->dtype, DType::kI64);
        got = static_cast<double>(At<int64_t>(*e, i));
      } else {
        FAIL() << "golden dtype " << dtype;
      }
      EXPECT_EQ(got, values[i]) << "element " << i;
    }
  }
}

// ---- Directories ----

TEST(SafetensorsDir, SingleFile) {
  const fs::path dir = TempDir("single");
  WriteFile(dir / "model.safetensors", SmallFile());
  auto r = LoadSafetensorsDir(dir.string());
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->size(), 3u);
}

TEST(SafetensorsDir, Empty) {
  ExpectError(LoadSafetensorsDir(TempDir("empty").string()), "holds neither");
}

// Two shards and an index.json, as Hugging Face writes them; shard 2 holds an extra tensor that the
// weight_map does not list (accepted).
fs::path MakeShardedDir(const std::string& name) {
  const fs::path dir = TempDir(name);
  WriteFile(dir / "model-00001-of-00002.safetensors",
            Write({{"embed", "F32", {2}, BytesOf(std::vector<float>{1, 2})},
                   {"layer0", "BF16", {2}, BytesOf(std::vector<uint16_t>{0x3f80, 0x4000})}}));
  WriteFile(dir / "model-00002-of-00002.safetensors",
            Write({{"norm", "F16", {1}, BytesOf(std::vector<uint16_t>{0x3c00})},
                   {"extra", "I8", {1}, "\x05"}}));
  WriteFile(dir / "model.safetensors.index.json", R"({
    "metadata": {"total_size": 14},
    "weight_map": {
      "embed": "model-00001-of-00002.safetensors",
      "layer0": "model-00001-of-00002.safetensors",
      "norm": "model-00002-of-00002.safetensors"
    }})");
  return dir;
}

TEST(SafetensorsDir, Shards) {
  const fs::path dir = MakeShardedDir("shards");
  // A model.safetensors next to the index is ignored: the index wins.
  WriteFile(dir / "model.safetensors", "garbage");
  auto r = LoadSafetensorsDir(dir.string());
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->size(), 4u);
  const TensorEntry* embed = r->Find("embed");
  const TensorEntry* norm = r->Find("norm");
  ASSERT_TRUE(embed && norm && r->Find("layer0") && r->Find("extra"));
  EXPECT_EQ(embed->file, (dir / "model-00001-of-00002.safetensors").string());
  EXPECT_EQ(norm->file, (dir / "model-00002-of-00002.safetensors").string());
  EXPECT_EQ(At<float>(*embed, 1), 2.0f);
  EXPECT_EQ(F16ToDouble(At<uint16_t>(*norm, 0)), 1.0);
}

TEST(SafetensorsDir, MissingShard) {
  const fs::path dir = MakeShardedDir("missing_shard");
  fs::remove(dir / "model-00002-of-00002.safetensors");
  ExpectError(LoadSafetensorsDir(dir.string()), "does not exist");
}

TEST(SafetensorsDir, TensorMissingFromItsShard) {
  const fs::path dir = MakeShardedDir("missing_tensor");
  WriteFile(dir / "model-00002-of-00002.safetensors",
            Write({{"other", "F16", {1}, BytesOf(std::vector<uint16_t>{0x3c00})}}));
  ExpectError(LoadSafetensorsDir(dir.string()),
              "tensor 'norm' is mapped to " + (dir / "model-00002-of-00002.safetensors").string() +
                  ", which does not hold it");
}

TEST(SafetensorsDir, TensorInTheWrongShard) {
  const fs::path dir = MakeShardedDir("wrong_shard");
  WriteFile(dir / "model-00002-of-00002.safetensors",
            Write({{"norm", "F16", {1}, BytesOf(std::vector<uint16_t>{0x3c00})},
                   {"extra", "I8", {1}, "\x05"}}));
  WriteFile(dir / "model.safetensors.index.json",
            R"({"weight_map": {"norm": "model-00001-of-00002.safetensors",
                               "extra": "model-00002-of-00002.safetensors"}})");
  ExpectError(LoadSafetensorsDir(dir.string()), "tensor 'norm' is mapped to");
}

TEST(SafetensorsDir, SameTensorInTwoShards) {
  const fs::path dir = MakeShardedDir("twice");
  WriteFile(dir / "model-00002-of-00002.safetensors",
            Write({{"norm", "F16", {1}, BytesOf(std::vector<uint16_t>{0x3c00})},
                   {"embed", "F32", {1}, BytesOf(std::vector<float>{1})}}));
  ExpectError(LoadSafetensorsDir(dir.string()), "tensor 'embed' appears twice");
}

TEST(SafetensorsDir, BadIndexJson) {
  const fs::path dir = MakeShardedDir("bad_index");
  const fs::path index = dir / "model.safetensors.index.json";
  WriteFile(index, R"({"weight_map": {"embed": )");
  ExpectError(LoadSafetensorsDir(dir.string()), "not valid JSON");
  WriteFile(index, R"({"weight_map": {"embed": 1E999}})");
  ExpectError(LoadSafetensorsDir(dir.string()), "not valid JSON");
  WriteFile(index, "[1, 2]");
  ExpectError(LoadSafetensorsDir(dir.string()), "not a JSON object");
  WriteFile(index, R"({"metadata": {}})");
  ExpectError(LoadSafetensorsDir(dir.string()), "missing 'weight_map'");
  WriteFile(index, R"({"weight_map": {}})");
  ExpectError(LoadSafetensorsDir(dir.string()), "lists no tensors");
  WriteFile(index, R"({"weight_map": {"embed": 3}})");
  ExpectError(LoadSafetensorsDir(dir.string()), "is not a string");
  WriteFile(index, R"({"weight_map": {"embed": "../model-00001-of-00002.safetensors"}})");
  ExpectError(LoadSafetensorsDir(dir.string()), "not inside");
  WriteFile(index, R"({"weight_map": {"embed": "/etc/passwd"}})");
  ExpectError(LoadSafetensorsDir(dir.string()), "not inside");
}

TEST(SafetensorsDir, MalformedShardNamesTheShard) {
  const fs::path dir = MakeShardedDir("bad_shard");
  WriteFile(dir / "model-00002-of-00002.safetensors", U64(1000) + "{}");
  ExpectError(LoadSafetensorsDir(dir.string()),
              (dir / "model-00002-of-00002.safetensors").string() + ": header length 1000");
}

TEST(Safetensors, AddIsAllOrNothing) {
  TensorIndex index;
  const fs::path dir = TempDir("add");
  WriteFile(dir / "one.safetensors", Write({{"c", "I8", {1}, "\x01"}}));
  ASSERT_TRUE(AddSafetensors((dir / "one.safetensors").string(), &index).ok());
  WriteFile(dir / "two.safetensors", SmallFile());  // a, b, c: c clashes
  const Status st = AddSafetensors((dir / "two.safetensors").string(), &index);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("tensor 'c' appears twice"), std::string::npos) << st.message();
  EXPECT_EQ(index.size(), 1u);
  EXPECT_EQ(index.Find("a"), nullptr);
}

// ---- Malformed files ----

TEST(SafetensorsMalformed, EveryTruncation) {
  const std::string bytes = SmallFile();
  ASSERT_TRUE(Parse(bytes).ok());
  for (size_t n = 0; n < bytes.size(); ++n) {
    auto r = Parse(bytes.substr(0, n));
    ASSERT_FALSE(r.ok()) << "truncated to " << n << " bytes";
    EXPECT_EQ(r.status().message().rfind("t.safetensors: ", 0), 0u) << r.status().message();
  }
  // And through the file path (mmap) for a few lengths.
  const fs::path dir = TempDir("truncated");
  for (size_t n : {size_t{0}, size_t{7}, size_t{8}, size_t{20}, bytes.size() - 1}) {
    WriteFile(dir / "t.safetensors", bytes.substr(0, n));
    EXPECT_FALSE(LoadSafetensors((dir / "t.safetensors").string()).ok()) << n;
  }
}

TEST(SafetensorsMalformed, HeaderLength) {
  ExpectError(Parse(U64(~uint64_t{0}) + "{}"), "exceeds the 100000000-byte limit");
  ExpectError(Parse(U64(uint64_t{1} << 63) + "{}"), "exceeds");
  ExpectError(Parse(U64(100'000'001) + "{}"), "exceeds");
  ExpectError(Parse(U64(3) + "{}"), "header length 3 runs past the end of the file (2 bytes");
  ExpectError(Parse("1234567"), "7 bytes is too short");
  ExpectError(Parse(""), "0 bytes is too short");
}

TEST(SafetensorsMalformed, HeaderNotJsonObject) {
  ExpectError(Parse(Frame("{\"a\": ", "")), "header is not valid JSON");
  ExpectError(Parse(Frame("", "")), "header is not valid JSON");
  ExpectError(Parse(Frame("{} trailing", "")), "header is not valid JSON");
  ExpectError(Parse(Frame("\xff\xfe", "")), "header is not valid JSON");
  // nlohmann reports this one as out_of_range, not parse_error (found by the fuzzer).
  ExpectError(Parse(Frame(R"({"x": [1E999]})", "")), "header is not valid JSON");
  ExpectError(Parse(Frame("[1, 2]", "")), "header is not a JSON object");
  ExpectError(Parse(Frame("\"x\"", "")), "header is not a JSON object");
  ExpectError(Parse(Frame(R"({"__metadata__": [1]})", "")), "'__metadata__' is not an object");
  ExpectError(Parse(Frame(R"({"__metadata__": {"k": 1}})", "")), "value of 'k' is not a string");
}

TEST(SafetensorsMalformed, Fields) {
  ExpectError(Parse(OneEntry("[]")), "t.safetensors: tensor 'x': entry is not a JSON object");
  ExpectError(Parse(OneEntry(R"({"shape": [1], "data_offsets": [0, 4]})")),
              "tensor 'x': missing field 'dtype'");
  ExpectError(Parse(OneEntry(R"({"dtype": "F32", "data_offsets": [0, 4]})")),
              "missing field 'shape'");
  ExpectError(Parse(OneEntry(R"({"dtype": "F32", "shape": [1]})")), "missing field 'data_offsets'");
  ExpectError(Parse(OneEntry(R"({"dtype": 1, "shape": [1], "data_offsets": [0, 4]})")),
              "'dtype' is not a string");
  ExpectError(Parse(OneEntry(R"({"dtype": "F32", "shape": 1, "data_offsets": [0, 4]})")),
              "'shape' is not an array");
  ExpectError(Parse(OneEntry(R"({"dtype": "F32", "shape": [1], "data_offsets": {}})")),
              "'data_offsets' is not an array of two integers");
}

TEST(SafetensorsMalformed, UnknownDType) {
  ExpectError(Parse(OneEntry(R"({"dtype": "F8_E4M3", "shape": [4], "data_offsets": [0, 4]})")),
              "t.safetensors: tensor 'x': unsupported dtype 'F8_E4M3'");
  ExpectError(Parse(OneEntry(R"({"dtype": "f32", "shape": [1], "data_offsets": [0, 4]})")),
              "unsupported dtype 'f32'");
  ExpectError(Parse(OneEntry(R"({"dtype": "Q4_0", "shape": [32], "data_offsets": [0, 18]})")),
              "unsupported dtype 'Q4_0'");
}

TEST(SafetensorsMalformed, Shapes) {
  ExpectError(Parse(OneEntry(R"({"dtype": "F32", "shape": [2, -2], "data_offsets": [0, 16]})")),
              "tensor 'x': shape has a negative dim -2");
  ExpectError(Parse(OneEntry(R"({"dtype": "F32", "shape": [2.0], "data_offsets": [0, 8]})")),
              "not a non-negative integer");
  ExpectError(Parse(OneEntry(R"({"dtype": "F32", "shape": ["2"], "data_offsets": [0, 8]})")),
              "not a non-negative integer");
  ExpectError(Parse(OneEntry(R"({"dtype": "F32", "shape": [1e30], "data_offsets": [0, 8]})")),
              "not a non-negative integer");
  // 2^32 * 2^32 elements overflows; a zero dim after it does not make the shape acceptable, so
  // numel() never overflows.
  ExpectError(
      Parse(OneEntry(
          R"({"dtype": "U8", "shape": [4294967296, 4294967296, 0], "data_offsets": [0, 0]})")),
      "more elements than fit in int64");
  ExpectError(Parse(OneEntry(
                  R"({"dtype": "U8", "shape": [18446744073709551615], "data_offsets": [0, 0]})")),
              "more elements than fit in int64");
  // Fits in int64 elements, but not in bytes.
  ExpectError(Parse(OneEntry(
                  R"({"dtype": "F64", "shape": [4611686018427387904], "data_offsets": [0, 8]})")),
              "needs more than 2^64");
}

TEST(SafetensorsMalformed, Offsets) {
  ExpectError(Parse(OneEntry(R"({"dtype": "BF16", "shape": [4], "data_offsets": [0, 12]})")),
              "t.safetensors: tensor 'x': data_offsets [0, 12] hold 12 bytes, shape [4] of bf16 "
              "needs 8");
  ExpectError(Parse(OneEntry(R"({"dtype": "F32", "shape": [4], "data_offsets": [0, 8]})")),
              "hold 8 bytes, shape [4] of f32 needs 16");
  ExpectError(Parse(OneEntry(R"({"dtype": "F32", "shape": [4], "data_offsets": [8, 24]})")),
              "data_offsets [8, 24] run past the end of the data buffer (16 bytes)");
  ExpectError(Parse(OneEntry(R"({"dtype": "F32", "shape": [1],
                                 "data_offsets": [18446744073709551612, 18446744073709551616]})")),
              "other than non-negative integers");
  ExpectError(Parse(OneEntry(R"({"dtype": "F32", "shape": [1], "data_offsets": [8, 4]})")),
              "run backwards");
  ExpectError(Parse(OneEntry(R"({"dtype": "F32", "shape": [1], "data_offsets": [-4, 0]})")),
              "other than non-negative integers");
  ExpectError(Parse(OneEntry(R"({"dtype": "F32", "shape": [1], "data_offsets": [0, 4, 8]})")),
              "not an array of two integers");
  ExpectError(Parse(OneEntry(R"({"dtype": "F32", "shape": [1], "data_offsets": [0]})")),
              "not an array of two integers");
}

TEST(SafetensorsMalformed, UnprintableNamesAreEscaped) {
  auto r = Parse(Frame(R"({"a\nb'": {"dtype": "F8_E5M2", "shape": [1], "data_offsets": [0, 1]}})",
                       std::string(1, '\0')));
  ExpectError(r, "tensor 'a\\x0ab\\x27'");
}

TEST(SafetensorsMalformed, MissingFile) {
  ExpectError(LoadSafetensors("/nonexistent/model.safetensors"), "/nonexistent/model.safetensors");
}

}  // namespace
}  // namespace herd
