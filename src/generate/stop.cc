#include "generate/stop.h"

#include <algorithm>
#include <utility>

namespace herd {

StopMatcher::StopMatcher(std::vector<int> stop_ids, std::vector<std::string> stop_strings)
    : stop_ids_(std::move(stop_ids)) {
  std::sort(stop_ids_.begin(), stop_ids_.end());
  for (std::string& s : stop_strings) {
    if (!s.empty()) stop_strings_.push_back(std::move(s));
  }
}

bool StopMatcher::IsStopToken(int id) const {
  return std::binary_search(stop_ids_.begin(), stop_ids_.end(), id);
}

std::string StopMatcher::Push(std::string_view text, bool* stopped) {
  if (stopped_) {
    if (stopped) *stopped = true;
    return "";
  }
  pending_.append(text);

  // The stop string that ends earliest in the text; ties go to the longer one (earlier start).
  size_t best_end = std::string::npos, best_pos = std::string::npos;
  for (const std::string& s : stop_strings_) {
    const size_t pos = pending_.find(s);
    if (pos == std::string::npos) continue;
    const size_t end = pos + s.size();
    if (end < best_end || (end == best_end && pos < best_pos)) {
      best_end = end;
      best_pos = pos;
    }
  }
  if (best_pos != std::string::npos) {
    std::string out = pending_.substr(0, best_pos);
    pending_.clear();
    stopped_ = true;
    if (stopped) *stopped = true;
    return out;
  }

  // Hold back the longest suffix that is a proper prefix of some stop string: any match still to
  // come must start inside it (a longer one would have had to start in text already emitted).
  size_t hold = 0;
  for (const std::string& s : stop_strings_) {
    const size_t max_len = std::min(pending_.size(), s.size() - 1);
    for (size_t len = max_len; len > hold; --len) {
      if (std::string_view(pending_).substr(pending_.size() - len) ==
          std::string_view(s).substr(0, len)) {
        hold = len;
        break;
      }
    }
  }
  std::string out = pending_.substr(0, pending_.size() - hold);
  pending_.erase(0, pending_.size() - hold);
  if (stopped) *stopped = false;
  return out;
}

std::string StopMatcher::Flush() {
  std::string out;
  out.swap(pending_);
  return out;  // empty after a stop: pending_ was cleared then
}

}  // namespace herd
