#include "tokenizer/bpe_train.h"

#include <algorithm>

#include "base/thread_pool.h"
#include "tokenizer/pretokenize.h"

namespace herd {

namespace {

constexpr size_t kChunkBytes = size_t{1} << 20;

bool IsAsciiLetter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// Cuts text into pieces of about kChunkBytes at '\n' followed by an ASCII letter: no Llama 3 piece
// spans such a point (a piece holding '\n' is whitespace or ends in [\r\n]*; a letter piece's
// optional prefix excludes '\n'), so splitting the chunks gives the pieces of the whole text.
void AppendChunks(std::string_view text, std::vector<std::string_view>* out) {
  size_t begin = 0;
  while (text.size() - begin > 2 * kChunkBytes) {
    size_t cut = begin + kChunkBytes;
    while (cut + 1 < text.size() && !(text[cut] == '\n' && IsAsciiLetter(text[cut + 1]))) ++cut;
    if (cut + 1 >= text.size()) break;
    out->push_back(text.substr(begin, cut + 1 - begin));
    begin = cut + 1;
  }
  if (begin < text.size()) out->push_back(text.substr(begin));
}

uint64_t PairKey(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }

}  // namespace

void BpeWordCounter::Add(std::span<const std::string_view> texts, ThreadPool* pool) {
  std::vector<std::string_view> chunks;
  for (std::string_view t : texts) AppendChunks(t, &chunks);
  const int n_threads = pool ? pool->size() : 1;
  std::vector<std::unordered_map<std::string_view, uint64_t>> local(n_threads);
  std::vector<uint64_t> words(n_threads, 0);
  auto count = [&](size_t i, int thread) {
    auto& m = local[thread];
    const std::string_view chunk = chunks[i];
    uint64_t n = 0;
    SplitLlama3(chunk, [&](size_t b, size_t e) {
      ++m[chunk.substr(b, e - b)];
      ++n;
    });
    words[thread] += n;
  };
  if (pool)
    pool->ParallelFor(chunks.size(), count);
  else
    for (size_t i = 0; i < chunks.size(); ++i) count(i, 0);
  for (int t = 0; t < n_threads; ++t) {
    for (const auto& [w, c] : local[t]) counts_[std::string(w)] += c;
    total_words_ += words[t];
  }
  for (std::string_view t : texts) total_bytes_ += t.size();
}

std::vector<std::pair<std::string, uint64_t>> BpeWordCounter::Words() const {
  std::vector<std::pair<std::string, uint64_t>> out(counts_.begin(), counts_.end());
  std::sort(out.begin(), out.end());
  return out;
}

Result<BpeTrainResult> TrainBpe(const std::vector<std::pair<std::string, uint64_t>>& words,
                                const BpeTrainOptions& options) {
  if (options.vocab_size < 256 + kBpeTrainSpecialTokens)
    return Status::Errorf(
        "vocab size {} is too small: it must be at least {} (256 byte tokens + {} "
        "special tokens)",
        options.vocab_size, 256 + kBpeTrainSpecialTokens, kBpeTrainSpecialTokens);
  const int32_t target = options.vocab_size - kBpeTrainSpecialTokens;
  BpeTrainResult result;
  std::vector<std::string>& vocab = result.ranks;  // token id = rank
  std::unordered_map<std::string, int32_t> id_of;
  for (int b = 0; b < 256; ++b) {
    vocab.emplace_back(1, static_cast<char>(b));
    id_of.emplace(vocab.back(), b);
  }

  // Words of two or more bytes, as symbol sequences.
  std::vector<std::vector<int32_t>> syms;
  std::vector<uint64_t> freq;
  for (const auto& [w, c] : words) {
    if (w.size() < 2 || c == 0) continue;
    std::vector<int32_t> s(w.size());
    for (size_t i = 0; i < w.size(); ++i) s[i] = static_cast<uint8_t>(w[i]);
    syms.push_back(std::move(s));
    freq.push_back(c);
  }

  std::unordered_map<uint64_t, uint64_t> pair_count;
  std::unordered_map<uint64_t, std::vector<int32_t>> where;  // may hold stale words
  for (size_t w = 0; w < syms.size(); ++w) {
    const auto& s = syms[w];
    for (size_t i = 0; i + 1 < s.size(); ++i) {
      const uint64_t k = PairKey(s[i], s[i + 1]);
      pair_count[k] += freq[w];
      auto& v = where[k];
      if (v.empty() || v.back() != static_cast<int32_t>(w)) v.push_back(static_cast<int32_t>(w));
    }
  }

  struct Entry {
    uint64_t count;
    int32_t a, b;
  };
  // Max-heap order: higher count first, then smaller (bytes of a, bytes of b).
  auto lower = [&vocab](const Entry& x, const Entry& y) {
    if (x.count != y.count) return x.count < y.count;
    if (x.a != y.a) return vocab[x.a] > vocab[y.a];
    return vocab[x.b] > vocab[y.b];
  };
  std::vector<Entry> heap;
  heap.reserve(pair_count.size());
  for (const auto& [k, c] : pair_count)
    heap.push_back({c, static_cast<int32_t>(k >> 32), static_cast<int32_t>(k & 0xFFFFFFFFu)});
  std::make_heap(heap.begin(), heap.end(), lower);

  std::vector<uint32_t> stamp(syms.size(), 0);
  uint32_t merge_no = 0;
  std::vector<uint64_t> touched;
  auto report = [&] {
    if (options.progress)
      options.progress({static_cast<int32_t>(vocab.size()), target, result.last_count});
  };
  while (static_cast<int32_t>(vocab.size()) < target) {
    if (heap.empty()) {
      result.stopped_early = "no pairs left";
      break;
    }
    std::pop_heap(heap.begin(), heap.end(), lower);
    const Entry e = heap.back();
    heap.pop_back();
    const uint64_t key = PairKey(e.a, e.b);
    auto it = pair_count.find(key);
    const uint64_t current = it == pair_count.end() ? 0 : it->second;
    if (current != e.count) {  // stale entry
      if (current > 0) {
        heap.push_back({current, e.a, e.b});
        std::push_heap(heap.begin(), heap.end(), lower);
      }
      continue;
    }
    if (current < std::max<uint64_t>(options.min_frequency, 1)) {
      result.stopped_early = "min frequency";
      break;
    }
    std::string merged = vocab[e.a] + vocab[e.b];
    int32_t id;
    if (auto f = id_of.find(merged); f != id_of.end()) {
      id = f->second;
    } else {
      id = static_cast<int32_t>(vocab.size());
      id_of.emplace(merged, id);
      vocab.push_back(std::move(merged));
    }
    ++result.merges;
    ++merge_no;
    result.last_count = current;

    std::vector<int32_t> affected = std::move(where[key]);
    where.erase(key);
    touched.clear();
    for (int32_t w : affected) {
      if (stamp[w] == merge_no) continue;
      stamp[w] = merge_no;
      auto& s = syms[w];
      const uint64_t f = freq[w];
      bool has = false;
      for (size_t i = 0; i + 1 < s.size() && !has; ++i) has = s[i] == e.a && s[i + 1] == e.b;
      if (!has) continue;
      for (size_t i = 0; i + 1 < s.size(); ++i) {
        auto p = pair_count.find(PairKey(s[i], s[i + 1]));
        if ((p->second -= f) == 0) pair_count.erase(p);
      }
      size_t out = 0;
      for (size_t i = 0; i < s.size();) {
        if (i + 1 < s.size() && s[i] == e.a && s[i + 1] == e.b) {
          s[out++] = id;
          i += 2;
        } else {
          s[out++] = s[i++];
        }
      }
      s.resize(out);
      for (size_t i = 0; i + 1 < s.size(); ++i) {
        const uint64_t k = PairKey(s[i], s[i + 1]);
        pair_count[k] += f;
        if (s[i] == id || s[i + 1] == id) {  // only these pairs can have gained count
          auto& v = where[k];
          if (v.empty() || v.back() != w) v.push_back(w);
          touched.push_back(k);
        }
      }
    }
    std::sort(touched.begin(), touched.end());
    touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
    for (uint64_t k : touched) {
      auto p = pair_count.find(k);
      if (p == pair_count.end()) continue;
      heap.push_back({p->second, static_cast<int32_t>(k >> 32), static_cast<int32_t>(k)});
      std::push_heap(heap.begin(), heap.end(), lower);
    }
    if (options.progress_every > 0 && result.merges % options.progress_every == 0) report();
  }
  report();
  return result;
}

std::string TiktokenFile(const std::vector<std::string>& ranks) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t r = 0; r < ranks.size(); ++r) {
    const std::string& t = ranks[r];
    for (size_t i = 0; i < t.size(); i += 3) {
      uint32_t w = uint32_t(uint8_t(t[i])) << 16;
      if (i + 1 < t.size()) w |= uint32_t(uint8_t(t[i + 1])) << 8;
      if (i + 2 < t.size()) w |= uint8_t(t[i + 2]);
      out.push_back(kAlphabet[(w >> 18) & 63]);
      out.push_back(kAlphabet[(w >> 12) & 63]);
      out.push_back(i + 1 < t.size() ? kAlphabet[(w >> 6) & 63] : '=');
      out.push_back(i + 2 < t.size() ? kAlphabet[w & 63] : '=');
    }
    out.push_back(' ');
    out.append(std::to_string(r));
    out.push_back('\n');
  }
  return out;
}

}  // namespace herd
