// GGUF writer: what it writes, the reader reads back exactly (metadata, tensor dims reversed,
// alignment).
#include "io/gguf_writer.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "io/gguf.h"

namespace herd::gguf {
namespace {

TEST(GgufWriter, RoundTripThroughReader) {
  Writer w;
  w.SetString("general.architecture", "llama");
  w.SetUint32("llama.block_count", 2);
  w.SetInt32("x.i32", -5);
  w.SetUint64("x.u64", 1ull << 40);
  w.SetFloat32("llama.rope.freq_base", 500000.0f);
  w.SetBool("x.flag", true);
  w.SetStringArray("tokenizer.ggml.tokens", {"a", "", "\xC4\xA0the"});
  w.SetInt32Array("tokenizer.ggml.token_type", {1, 3, 1});
  w.SetFloat32Array("x.floats", {0.5f, -1.0f});
  std::vector<float> a(3 * 5);
  for (size_t i = 0; i < a.size(); ++i) a[i] = 0.25f * i;
  std::vector<uint16_t> b(7, 0x3C00);  // f16 ones
  ASSERT_TRUE(w.AddTensor("a.weight", DType::kF32, {3, 5}, a.data(), a.size() * 4).ok());
  ASSERT_TRUE(w.AddTensor("b.weight", DType::kF16, {7}, b.data(), b.size() * 2).ok());
  auto bytes = w.Serialize();
  ASSERT_TRUE(bytes.ok()) << bytes.status().message();
  auto f = File::ParseBytes(*bytes, "mem.gguf");
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(*f->GetString("general.architecture"), "llama");
  EXPECT_EQ(*f->GetUint("llama.block_count"), 2u);
  EXPECT_EQ(f->Find("x.i32")->i, -5);
  EXPECT_EQ(*f->GetUint("x.u64"), 1ull << 40);
  EXPECT_EQ(*f->GetFloat("llama.rope.freq_base"), 500000.0);
  EXPECT_EQ(f->Find("x.flag")->i, 1);
  EXPECT_EQ(**f->GetStringArray("tokenizer.ggml.tokens"),
            (std::vector<std::string_view>{"a", "", "\xC4\xA0the"}));
  EXPECT_EQ(**f->GetIntArray("tokenizer.ggml.token_type"), (std::vector<int64_t>{1, 3, 1}));
  EXPECT_EQ(**f->GetFloatArray("x.floats"), (std::vector<double>{0.5, -1.0}));
  ASSERT_EQ(f->tensors().size(), 2u);
  const TensorInfo& ta = f->tensors()[0];
  EXPECT_EQ(ta.name, "a.weight");
  EXPECT_EQ(ta.dims, (std::vector<uint64_t>{5, 3}));  // GGUF order: contiguous dimension first
  EXPECT_EQ(ta.ggml_type, 0u);
  ASSERT_EQ(ta.n_bytes, a.size() * 4);
  EXPECT_EQ(std::memcmp(ta.data, a.data(), ta.n_bytes), 0);
  const TensorInfo& tb = f->tensors()[1];
  EXPECT_EQ(tb.offset % 32, 0u);
  EXPECT_EQ(std::memcmp(tb.data, b.data(), tb.n_bytes), 0);

  // Write() streams the same bytes to disk.
  const std::string path = std::string(HERD_BINARY_DIR) + "/test_data/writer_test.gguf";
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  ASSERT_TRUE(w.Write(path).ok());
  auto on_disk = File::Open(path);
  ASSERT_TRUE(on_disk.ok()) << on_disk.status().message();
  EXPECT_EQ(std::filesystem::file_size(path), bytes->size());
}

TEST(GgufWriter, Errors) {
  Writer w;
  float x[4] = {};
  EXPECT_EQ(w.AddTensor("t", DType::kF32, {2, 2}, x, 12).message(),
            "tensor 't': 12 bytes given, shape needs 16");
  EXPECT_EQ(w.AddTensor("t", DType::kQ8_0, {2, 16}, x, 34).message(),
            "tensor 't': row of 16 elements is not a multiple of q8_0's block of 32");
  EXPECT_EQ(w.AddTensor("t", DType::kI64, {2}, x, 16).message(),
            "dtype i64 cannot be stored in GGUF");
  ASSERT_TRUE(w.AddTensor("t", DType::kF32, {4}, x, 16).ok());
  EXPECT_EQ(w.AddTensor("t", DType::kF32, {4}, x, 16).message(), "tensor 't' added twice");
  w.SetUint32("k", 1);
  w.SetUint32("k", 2);
  EXPECT_EQ(w.Serialize().status().message(), "metadata key 'k' set twice");
  EXPECT_FALSE(w.Write("/nonexistent-dir/x.gguf").ok());
}

}  // namespace
}  // namespace herd::gguf
