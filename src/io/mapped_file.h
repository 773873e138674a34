// Read-only memory-mapped files. Small or special files (pipes, /proc) fall back to a heap copy, so
// every reader sees one contiguous byte span either way.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"

namespace herd {

class MappedFile {
 public:
  static Result<std::shared_ptr<MappedFile>> Open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  std::string_view view() const { return {reinterpret_cast<const char*>(data_), size_}; }
  const std::string& path() const { return path_; }

 private:
  MappedFile() = default;
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  bool mapped_ = false;
  std::string copy_;  // used when the file cannot be mapped
};

// Drops this process's pages of [p, p + n) where that range lies in a file MappedFile mapped
// (whole pages inside the range only); touched again, they are read back from the file. Memory
// that is not a mapped file is left alone. Returns the bytes released. For weights that were
// copied into another layout: their file pages then stop counting in the resident set.
size_t ReleaseMappedPages(const void* p, size_t n);

// Reads a whole file into a string (for small text files: JSON configs, tokenizer files).
Result<std::string> ReadFileToString(const std::string& path);

}  // namespace herd
