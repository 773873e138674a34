// safetensors writer: round trips through the reader (io/safetensors.h) for every dtype, the header
// layout checked byte by byte (8-byte aligned data, order, metadata), and the errors, each of which
// must leave neither the file nor PATH.tmp behind.
#include "io/safetensors_writer.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/safetensors.h"

namespace herd {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

fs::path TempDir(const std::string& name) {
  fs::path dir = fs::path(::testing::TempDir()) / ("herd_safetensors_writer_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::string ReadAll(const fs::path& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), {});
}

// A tensor and the bytes behind it (a deterministic pattern; bool bytes are 0/1).
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

void ExpectSameTensors(const TensorIndex& index, const std::vector<Owned>& want) {
  ASSERT_EQ(index.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    const TensorEntry* e = index.Find(want[i].name);
    ASSERT_NE(e, nullptr) << want[i].name;
    SCOPED_TRACE(want[i].name);
    EXPECT_EQ(e->dtype, want[i].dtype);
    EXPECT_EQ(e->shape, want[i].shape);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(e->data), e->n_bytes), want[i].bytes);
  }
}

// The header of a written file: (JSON, length field, padded header text).
struct Header {
  json root;
  uint64_t length;
  std::string text;
};
Header ReadHeader(const std::string& bytes) {
  Header h;
  std::memcpy(&h.length, bytes.data(), 8);
  h.text = bytes.substr(8, h.length);
  h.root = json::parse(h.text);
  return h;
}

void ExpectNothingWritten(const fs::path& path) {
  EXPECT_FALSE(fs::exists(path)) << path;
  EXPECT_FALSE(fs::exists(path.string() + ".tmp")) << path;
}

void ExpectError(const Status& st, const std::string& substring) {
  ASSERT_FALSE(st.ok()) << "expected an error containing: " << substring;
  EXPECT_NE(st.message().find(substring), std::string::npos) << st.message();
}

std::vector<Owned> EveryDType() {
  return {Make("f64", DType::kF64, {2, 3}, 0),    Make("f32", DType::kF32, {4}, 1),
          Make("f16", DType::kF16, {3, 1, 2}, 2), Make("bf16", DType::kBF16, {5}, 3),
          Make("i64", DType::kI64, {2}, 4),       Make("i32", DType::kI32, {1, 3}, 5),
          Make("i16", DType::kI16, {7}, 6),       Make("i8", DType::kI8, {3, 3}, 7),
          Make("u8", DType::kU8, {2, 2, 2}, 8),   Make("bool", DType::kBool, {5}, 9)};
}

TEST(SafetensorsWriter, EveryDTypeRoundTrips) {
  const fs::path path = TempDir("dtypes") / "model.safetensors";
  const std::vector<Owned> tensors = EveryDType();
  ASSERT_TRUE(WriteSafetensors(path, Views(tensors)).ok());
  EXPECT_FALSE(fs::exists(path.string() + ".tmp"));
  auto index = LoadSafetensors(path);
  ASSERT_TRUE(index.ok()) << index.status().message();
  ExpectSameTensors(*index, tensors);
  // The reader lists tensors in data-offset order: the order they were given.
  for (size_t i = 0; i < tensors.size(); ++i) EXPECT_EQ(index->entries()[i].name, tensors[i].name);
}

TEST(SafetensorsWriter, HeaderLayout) {
  const fs::path path = TempDir("layout") / "model.safetensors";
  const std::vector<Owned> tensors = {Make("z.last_name_first", DType::kBF16, {3}, 0),
                                      Make("a", DType::kF32, {1, 1}, 1),
                                      Make("m", DType::kU8, {5}, 2)};
  ASSERT_TRUE(WriteSafetensors(path, Views(tensors)).ok());
  const std::string bytes = ReadAll(path);
  const Header h = ReadHeader(bytes);
  EXPECT_EQ((8 + h.length) % 8, 0u);
  const size_t end = h.text.find_last_not_of(' ');
  EXPECT_EQ(h.text[end], '}');
  EXPECT_LT(h.text.size() - end - 1, 8u);  // at most 7 spaces of padding
  EXPECT_FALSE(h.root.contains("__metadata__"));
  ASSERT_EQ(h.root.size(), tensors.size());
  uint64_t offset = 0;
  size_t i = 0;
  for (const auto& [name, entry] : h.root.items()) {  // ordered_json: file order
    const Owned& t = tensors[i++];
    EXPECT_EQ(name, t.name);
    EXPECT_EQ(entry["dtype"], i == 1 ? "BF16" : i == 2 ? "F32" : "U8");
    EXPECT_EQ(entry["shape"].get<std::vector<int64_t>>(), t.shape);
    EXPECT_EQ(entry["data_offsets"], json::array({offset, offset + t.bytes.size()}));
    EXPECT_EQ(bytes.substr(8 + h.length + offset, t.bytes.size()), t.bytes);
    offset += t.bytes.size();
  }
  EXPECT_EQ(bytes.size(), 8 + h.length + offset);
}

TEST(SafetensorsWriter, MetadataRoundTrips) {
  const fs::path path = TempDir("metadata") / "model.safetensors";
  const std::map<std::string, std::string> metadata = {
      {"format", "pt"}, {"note", "quotes \" and \\ and \n newline, é"}, {"empty", ""}};
  const std::vector<Owned> tensors = {Make("w", DType::kF16, {2}, 0)};
  ASSERT_TRUE(WriteSafetensors(path, Views(tensors), metadata).ok());
  const Header h = ReadHeader(ReadAll(path));
  EXPECT_EQ(h.root.begin().key(), "__metadata__");
  EXPECT_EQ((h.root["__metadata__"].get<std::map<std::string, std::string>>()), metadata);
  auto index = LoadSafetensors(path);  // the reader accepts (and skips) the metadata
  ASSERT_TRUE(index.ok()) << index.status().message();
  ExpectSameTensors(*index, tensors);
}

TEST(SafetensorsWriter, ScalarEmptyAndNoTensors) {
  const fs::path dir = TempDir("shapes");
  const std::vector<Owned> tensors = {
      Make("scalar", DType::kF32, {}, 0), Make("empty_rows", DType::kBF16, {0, 3}, 1),
      Make("empty_cols", DType::kI64, {3, 0}, 2), Make("after", DType::kI8, {2}, 3)};
  ASSERT_TRUE(WriteSafetensors(dir / "a.safetensors", Views(tensors)).ok());
  auto index = LoadSafetensors(dir / "a.safetensors");
  ASSERT_TRUE(index.ok()) << index.status().message();
  ExpectSameTensors(*index, tensors);
  EXPECT_TRUE(index->Find("scalar")->shape.empty());
  EXPECT_EQ(index->Find("empty_rows")->n_bytes, 0u);

  ASSERT_TRUE(WriteSafetensors(dir / "none.safetensors", {}).ok());
  const std::string bytes = ReadAll(dir / "none.safetensors");
  EXPECT_EQ(bytes.size(), 16u);  // length, then "{}" and 6 spaces
  EXPECT_EQ(bytes.substr(8), "{}      ");
  auto none = LoadSafetensors(dir / "none.safetensors");
  ASSERT_TRUE(none.ok()) << none.status().message();
  EXPECT_EQ(none->size(), 0u);
}

TEST(SafetensorsWriter, LargeAndSmallWritesInterleave) {
  // 3 MiB tensors go straight to the file, small ones through the buffer; order must hold.
  const fs::path path = TempDir("large") / "model.safetensors";
  const std::vector<Owned> tensors = {
      Make("small0", DType::kU8, {3}, 0), Make("big0", DType::kF32, {768, 1024}, 1),
      Make("small1", DType::kI16, {5}, 2), Make("big1", DType::kBF16, {1024, 1536}, 3),
      Make("small2", DType::kU8, {1}, 4)};
  ASSERT_TRUE(WriteSafetensors(path, Views(tensors)).ok());
  auto index = LoadSafetensors(path);
  ASSERT_TRUE(index.ok()) << index.status().message();
  ExpectSameTensors(*index, tensors);
}

TEST(SafetensorsWriter, ReplacesAnExistingFile) {
  const fs::path path = TempDir("replace") / "model.safetensors";
  std::ofstream(path) << "old contents";
  const std::vector<Owned> tensors = {Make("w", DType::kF32, {2}, 0)};
  ASSERT_TRUE(WriteSafetensors(path, Views(tensors)).ok());
  auto index = LoadSafetensors(path);
  ASSERT_TRUE(index.ok()) << index.status().message();
  ExpectSameTensors(*index, tensors);
}

TEST(SafetensorsWriter, InvalidTensorsAreRejectedBeforeWriting) {
  const fs::path path = TempDir("invalid") / "model.safetensors";
  const Owned good = Make("good", DType::kF32, {2, 2}, 0);
  auto write = [&](TensorToWrite bad) { return WriteSafetensors(path, {good.View(), bad}); };

  TensorToWrite t = good.View();
  t.name = "short";
  t.n_bytes = 15;
  ExpectError(write(t), "tensor 'short': 15 bytes given, shape [2, 2] of f32 needs 16");
  t.name = "long";
  t.n_bytes = 20;
  ExpectError(write(t), "tensor 'long': 20 bytes given");
  t = good.View();
  t.name = "neg";
  t.shape = {-1, 4};
  ExpectError(write(t), "tensor 'neg': shape [-1, 4] has a negative dim");
  t.shape = {int64_t{1} << 40, int64_t{1} << 40};
  ExpectError(write(t), "more elements than fit in int64");
  t = good.View();
  ExpectError(write(t), "tensor 'good' is given twice");
  t.name = "null";
  t.data = nullptr;
  ExpectError(write(t), "tensor 'null': data is null");
  t = good.View();
  t.name = "__metadata__";
  ExpectError(write(t), "cannot be named '__metadata__'");
  t.name = "bad\xff utf8";
  ExpectError(write(t), "cannot encode the header");
  const std::string q4(18, '\0');  // one valid q4_0 block
  ExpectError(write({"quant", DType::kQ4_0, {32}, q4.data(), q4.size()}),
              "tensor 'quant': dtype q4_0 cannot be stored in safetensors");
  ExpectNothingWritten(path);
  ExpectError(WriteSafetensors(path, {good.View()}, {{"bad", "\xc3"}}), "cannot encode the header");
  ExpectNothingWritten(path);
}

TEST(SafetensorsWriter, UnwritablePathLeavesNothing) {
  const fs::path dir = TempDir("unwritable");
  const std::vector<Owned> tensors = {Make("w", DType::kF32, {2}, 0)};
  const fs::path missing = dir / "no_such_dir" / "model.safetensors";
  ExpectError(WriteSafetensors(missing, Views(tensors)), "model.safetensors.tmp: cannot create");
  ExpectNothingWritten(missing);
  // The target is a non-empty directory: the temporary is written, the rename fails, and the
  // temporary is removed.
  const fs::path occupied = dir / "occupied";
  fs::create_directories(occupied / "child");
  ExpectError(WriteSafetensors(occupied, Views(tensors)), "cannot rename");
  EXPECT_TRUE(fs::is_directory(occupied / "child"));
  EXPECT_FALSE(fs::exists(occupied.string() + ".tmp"));
}

}  // namespace
}  // namespace herd
