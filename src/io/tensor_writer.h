// What the weights writers (safetensors_writer.h, pth_writer.h) share: the tensor they are handed,
// the checks every format needs, and OutputFile, which writes PATH.tmp and renames it to PATH only
// once everything is written, so a crash or an error never leaves a half-written file under the
// final name (and an error removes the temporary).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/dtype.h"
#include "base/status.h"

namespace herd {

// One tensor to write: bytes are row-major little-endian in `dtype`, shape outermost first.
// `data` must stay valid until the write returns; it is streamed to the file, not copied.
struct TensorToWrite {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  const void* data;
  uint64_t n_bytes;
};

// Checks what every writer needs: no negative dims, numel fits in int64, n_bytes equals
// BytesFor(dtype, numel), data is non-null when n_bytes > 0, and no name appears twice. Errors
// start with `path` and name the tensor.
Status ValidateTensorsToWrite(const std::string& path, const std::vector<TensorToWrite>& tensors);

// Element count of a validated shape (1 for a 0-d tensor).
uint64_t NumElements(const std::vector<int64_t>& shape);

// A file being written: bytes go to PATH.tmp (small writes buffered, large ones straight through),
// Commit() renames it to PATH. Destroying an OutputFile that was not committed removes PATH.tmp.
class OutputFile {
 public:
  static Result<OutputFile> Create(const std::string& path);
  OutputFile(OutputFile&& other) noexcept;
  OutputFile& operator=(OutputFile&&) = delete;
  ~OutputFile();

  // Appends n bytes.
  Status Write(const void* data, uint64_t n);
  // Overwrites n bytes already written at `offset` (to patch a header once its data is known).
  Status WriteAt(uint64_t offset, const void* data, uint64_t n);
  // Bytes written so far: the offset of the next Write.
  uint64_t size() const { return size_; }
  // Flushes, closes and renames PATH.tmp to PATH; on error PATH.tmp is removed.
  Status Commit();

  const std::string& path() const { return path_; }
  const std::string& tmp_path() const { return tmp_; }

 private:
  OutputFile(std::string path, std::string tmp, int fd);
  Status Flush();
  Status WriteAll(const void* data, uint64_t n);

  std::string path_;
  std::string tmp_;  // empty once committed, removed or moved from
  int fd_ = -1;
  uint64_t size_ = 0;   // bytes written, buffered ones included
  std::string buffer_;  // bytes not yet written to fd_
};

}  // namespace herd
