#include "io/tensor_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string_view>
#include <unordered_set>
#include <utility>

namespace herd {
namespace {

constexpr size_t kBufferBytes = size_t{1} << 20;   // small writes are gathered up to this
constexpr size_t kDirectBytes = size_t{64} << 10;  // writes this large bypass the buffer
constexpr uint64_t kMaxSyscallBytes = uint64_t{1} << 30;

std::string Dims(const std::vector<int64_t>& shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

}  // namespace

uint64_t NumElements(const std::vector<int64_t>& shape) {
  uint64_t n = 1;
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

Status ValidateTensorsToWrite(const std::string& path, const std::vector<TensorToWrite>& tensors) {
  std::unordered_set<std::string_view> names;
  for (const TensorToWrite& t : tensors) {
    if (!names.insert(t.name).second)
      return Status::Errorf("{}: tensor '{}' is given twice", path, t.name);
    // The product of the non-zero dims must fit in int64 whatever order zeros come in.
    uint64_t nonzero = 1;
    bool has_zero = false;
    for (int64_t d : t.shape) {
      if (d < 0)
        return Status::Errorf("{}: tensor '{}': shape {} has a negative dim", path, t.name,
                              Dims(t.shape));
      if (d == 0) {
        has_zero = true;
      } else if (__builtin_mul_overflow(nonzero, static_cast<uint64_t>(d), &nonzero) ||
                 nonzero > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return Status::Errorf("{}: tensor '{}': shape {} has more elements than fit in int64", path,
                              t.name, Dims(t.shape));
      }
    }
    const uint64_t numel = has_zero ? 0 : nonzero;
    const std::optional<uint64_t> need = BytesFor(t.dtype, numel);
    if (!need || *need != t.n_bytes)
      return Status::Errorf(
          "{}: tensor '{}': {} bytes given, shape {} of {} needs {}", path, t.name, t.n_bytes,
          Dims(t.shape), Name(t.dtype),
          need ? fmt::format("{}", *need) : std::string("a whole number of blocks"));
    if (t.n_bytes > 0 && t.data == nullptr)
      return Status::Errorf("{}: tensor '{}': data is null", path, t.name);
  }
  return Status::Ok();
}

// ---- OutputFile ----

Result<OutputFile> OutputFile::Create(const std::string& path) {
  std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::Errorf("{}: cannot create: {}", tmp, std::strerror(errno));
  return OutputFile(path, std::move(tmp), fd);
}

OutputFile::OutputFile(std::string path, std::string tmp, int fd)
    : path_(std::move(path)), tmp_(std::move(tmp)), fd_(fd) {
  buffer_.reserve(kBufferBytes);
}

OutputFile::OutputFile(OutputFile&& other) noexcept
    : path_(std::move(other.path_)),
      tmp_(std::exchange(other.tmp_, std::string())),
      fd_(std::exchange(other.fd_, -1)),
      size_(other.size_),
      buffer_(std::move(other.buffer_)) {}

OutputFile::~OutputFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!tmp_.empty()) std::remove(tmp_.c_str());
}

Status OutputFile::WriteAll(const void* data, uint64_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd_, p, static_cast<size_t>(std::min(n, kMaxSyscallBytes)));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return Status::Errorf("{}: write failed: {}", tmp_, std::strerror(errno));
    p += w;
    n -= static_cast<uint64_t>(w);
  }
  return Status::Ok();
}

Status OutputFile::Flush() {
  if (buffer_.empty()) return Status::Ok();
  Status st = WriteAll(buffer_.data(), buffer_.size());
  buffer_.clear();
  return st;
}

Status OutputFile::Write(const void* data, uint64_t n) {
  if (fd_ < 0) return Status::Errorf("{}: write after close", path_);
  size_ += n;
  if (n >= kDirectBytes) {
    HERD_RETURN_IF_ERROR(Flush());
    return WriteAll(data, n);
  }
  buffer_.append(static_cast<const char*>(data), n);
  return buffer_.size() >= kBufferBytes ? Flush() : Status::Ok();
}

Status OutputFile::WriteAt(uint64_t offset, const void* data, uint64_t n) {
  if (fd_ < 0) return Status::Errorf("{}: write after close", path_);
  if (offset > size_ || n > size_ - offset)
    return Status::Errorf("{}: patch of {} bytes at {} lies past the {} bytes written", tmp_, n,
                          offset, size_);
  HERD_RETURN_IF_ERROR(Flush());
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::pwrite(fd_, p, static_cast<size_t>(std::min(n, kMaxSyscallBytes)),
                               static_cast<off_t>(offset));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return Status::Errorf("{}: write failed: {}", tmp_, std::strerror(errno));
    p += w;
    n -= static_cast<uint64_t>(w);
    offset += static_cast<uint64_t>(w);
  }
  return Status::Ok();
}

Status OutputFile::Commit() {
  if (fd_ < 0) return Status::Errorf("{}: already closed", path_);
  Status st = Flush();
  const int fd = std::exchange(fd_, -1);
  if (::close(fd) != 0 && st.ok())
    st = Status::Errorf("{}: close failed: {}", tmp_, std::strerror(errno));
  if (!st.ok()) return st;  // the destructor removes the temporary
  std::error_code ec;
  std::filesystem::rename(tmp_, path_, ec);
  if (ec) return Status::Errorf("{}: cannot rename to {}: {}", tmp_, path_, ec.message());
  tmp_.clear();
  return Status::Ok();
}

}  // namespace herd
