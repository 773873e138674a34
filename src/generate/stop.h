// Stop handling for generation: stop tokens (ids, checked before decoding) and stop strings,
// matched on the decoded text across token boundaries.
//
// A stop string may arrive split over many tokens ("<|" "end" "|>"), so text that could be the
// start of one is held back until it either completes (generation stops; the stop string and
// everything after it are dropped) or turns out to be ordinary text (released). Matching is on
// bytes, exact and case-sensitive. With several stop strings, the one that completes first in the
// text wins (ties: the longer one), which makes the output independent of how the text was split
// into pieces: with stops "abc" and "b", the text "abc" stops after "a" whether it came as one
// piece or three.
//
// Inputs are valid UTF-8 pieces (StreamDecoder output) and stop strings valid UTF-8; then every cut
// falls on a character boundary (UTF-8 is self-synchronising), so the emitted text is valid UTF-8.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace herd {

class StopMatcher {
 public:
  // Empty stop strings are ignored (they would match before any text).
  StopMatcher(std::vector<int> stop_ids, std::vector<std::string> stop_strings);

  bool IsStopToken(int id) const;

  // Feeds newly decoded text; returns the text that is safe to emit now (everything that cannot be
  // the start of a stop string), holding back a possible partial match. Sets *stopped (may be null)
  // to whether a stop string has completed; after that, Push and Flush return "".
  std::string Push(std::string_view text, bool* stopped);
  // At the end of generation (stop token, length limit): releases any held-back text.
  std::string Flush();

  bool stopped() const { return stopped_; }
  size_t held_bytes() const { return pending_.size(); }

 private:
  std::vector<int> stop_ids_;  // sorted
  std::vector<std::string> stop_strings_;
  std::string pending_;  // held back: a suffix of the text that is a proper prefix of a stop string
  bool stopped_ = false;
};

}  // namespace herd
