#include "io/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

namespace herd {

namespace {

// The live mappings: start address -> size.
std::mutex& MappingsMutex() {
  static std::mutex m;
  return m;
}
std::map<uintptr_t, size_t>& Mappings() {
  static std::map<uintptr_t, size_t> m;
  return m;
}

}  // namespace

size_t ReleaseMappedPages(const void* p, size_t n) {
  const auto begin = reinterpret_cast<uintptr_t>(p);
  const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t first = (begin + page - 1) / page * page, last = (begin + n) / page * page;
  if (last <= first) return 0;
  std::lock_guard<std::mutex> lock(MappingsMutex());
  auto it = Mappings().upper_bound(begin);
  if (it == Mappings().begin()) return 0;
  --it;
  if (begin + n > it->first + it->second) return 0;  // not inside one mapping
  if (::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED) != 0) return 0;
  return last - first;
}

Result<std::shared_ptr<MappedFile>> MappedFile::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::Errorf("{}: cannot open: {}", path, std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return Status::Errorf("{}: cannot stat: {}", path, std::strerror(err));
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    return Status::Errorf("{}: is a directory, expected a file", path);
  }
  std::shared_ptr<MappedFile> f(new MappedFile());
  f->path_ = path;
  if (S_ISREG(st.st_mode) && st.st_size > 0) {
    void* p = ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
    if (p != MAP_FAILED) {
      ::close(fd);
      f->data_ = static_cast<const uint8_t*>(p);
      f->size_ = static_cast<size_t>(st.st_size);
      f->mapped_ = true;
      std::lock_guard<std::mutex> lock(MappingsMutex());
      Mappings()[reinterpret_cast<uintptr_t>(p)] = f->size_;
      return f;
    }
  }
  // Not mappable (empty, pipe, procfs): read it.
  char buf[1 << 16];
  for (;;) {
    ssize_t r = ::read(fd, buf, sizeof(buf));
    if (r < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      return Status::Errorf("{}: read error: {}", path, std::strerror(err));
    }
    if (r == 0) break;
    f->copy_.append(buf, static_cast<size_t>(r));
  }
  ::close(fd);
  f->data_ = reinterpret_cast<const uint8_t*>(f->copy_.data());
  f->size_ = f->copy_.size();
  return f;
}

MappedFile::~MappedFile() {
  if (!mapped_) return;
  {
    std::lock_guard<std::mutex> lock(MappingsMutex());
    Mappings().erase(reinterpret_cast<uintptr_t>(data_));
  }
  ::munmap(const_cast<uint8_t*>(data_), size_);
}

Result<std::string> ReadFileToString(const std::string& path) {
  HERD_ASSIGN_OR_RETURN(auto f, MappedFile::Open(path));
  return std::string(f->view());
}

}  // namespace herd
