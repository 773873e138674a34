// SHA-256 (FIPS 180-4), for the content hashes recorded in token-shard headers and data cards:
// input files, the tokenizer file, the shard files themselves.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"

namespace herd {

class Sha256 {
 public:
  Sha256();
  void Update(const void* data, size_t n);
  void Update(std::string_view s) { Update(s.data(), s.size()); }
  // Finishes the hash: 64 lowercase hex digits. The object must not be updated afterwards.
  std::string HexDigest();

 private:
  void Block(const uint8_t* p);
  std::array<uint32_t, 8> h_;
  std::array<uint8_t, 64> buf_;
  size_t buf_len_ = 0;
  uint64_t total_ = 0;  // bytes
};

std::string Sha256Hex(std::string_view data);
// The hash of a whole file, read in 1 MiB blocks.
Result<std::string> Sha256File(const std::string& path);

}  // namespace herd
