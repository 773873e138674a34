#include "io/tensor_index.h"

namespace herd {

int64_t TensorEntry::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

Status TensorIndex::Add(TensorEntry entry) {
  auto [it, fresh] = by_name_.emplace(entry.name, entries_.size());
  if (!fresh)
    return Status::Errorf("tensor '{}' appears twice ({} and {})", entry.name,
                          entries_[it->second].file, entry.file);
  entries_.push_back(std::move(entry));
  return Status::Ok();
}

const TensorEntry* TensorIndex::Find(std::string_view name) const {
  auto it = by_name_.find(std::string(name));
  return it == by_name_.end() ? nullptr : &entries_[it->second];
}

}  // namespace herd
