// io/mapped_file.h: ReleaseMappedPages drops the pages of a mapped file (they read back the same)
// and leaves memory that is not a mapped file alone.
#include "io/mapped_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

namespace herd {
namespace {

TEST(MappedFile, ReleasedPagesReadBackTheSame) {
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  std::vector<char> bytes(page * 8 + 123);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 7 + 3);
  const auto path = std::filesystem::temp_directory_path() /
                    ("herd_mapped_" + std::to_string(::getpid()) + ".bin");
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<long>(bytes.size()));
  auto f = MappedFile::Open(path.string());
  ASSERT_TRUE(f.ok());
  const uint8_t* data = (*f)->data();
  ASSERT_EQ(std::memcmp(data, bytes.data(), bytes.size()), 0);
  // From an unaligned start: only the whole pages inside the range go.
  const size_t released = ReleaseMappedPages(data + 100, page * 5);
  EXPECT_EQ(released, page * 4);
  EXPECT_EQ(std::memcmp(data, bytes.data(), bytes.size()), 0);
  // Past the mapping's end, or memory that is no mapped file: nothing.
  EXPECT_EQ(ReleaseMappedPages(data + page, bytes.size()), 0u);
  std::vector<uint8_t> heap(page * 4, 42);
  EXPECT_EQ(ReleaseMappedPages(heap.data(), heap.size()), 0u);
  EXPECT_EQ(heap[page * 2], 42);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace herd
