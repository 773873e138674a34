#include "train/sampler.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "base/check.h"

namespace herd {
namespace {

using nlohmann::json;

// splitmix64's finaliser: a bijective 64-bit mixer.
uint64_t Mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
uint64_t Hash(uint64_t a, uint64_t b) { return Mix64(a ^ Mix64(b)); }

constexpr uint64_t kSelectTag = 0x73656c656374ull;  // "select"
constexpr uint64_t kPermuteTag = 0x7065726dull;     // "perm"

uint64_t NameHash(const std::string& s) {  // FNV-1a
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

// A keyed bijection of [0, n): a balanced 4-round Feistel network over the smallest even number of
// bits covering n, with cycle walking (values >= n are permuted again). The domain is < 4n, so a
// walk takes fewer than 4 rounds on average.
uint64_t Permute(uint64_t x, uint64_t n, uint64_t key) {
  int bits = 2;
  while ((uint64_t{1} << bits) < n) ++bits;
  bits += bits & 1;
  const int half = bits / 2;
  const uint64_t mask = (uint64_t{1} << half) - 1;
  do {
    uint64_t l = x >> half, r = x & mask;
    for (uint64_t round = 0; round < 4; ++round) {
      const uint64_t t = l ^ (Hash(key + round, r) & mask);
      l = r;
      r = t;
    }
    x = (l << half) | r;
  } while (x >= n);
  return x;
}

}  // namespace

Result<MixSampler> MixSampler::Create(const DataMix& mix, const SamplerOptions& o) {
  if (o.seq_len < 1) return Status::Errorf("sampler: seq_len must be >= 1, got {}", o.seq_len);
  if (o.batch < 1) return Status::Errorf("sampler: batch must be >= 1, got {}", o.batch);
  if (o.world_size < 1 || o.rank < 0 || o.rank >= o.world_size)
    return Status::Errorf("sampler: rank {} of world_size {}", o.rank, o.world_size);
  MixSampler s;
  s.mix_ = &mix;
  s.options_ = o;
  const uint64_t window = uint64_t(o.seq_len) + 1;
  double cum = 0;
  for (const MixSource& src : mix.sources()) {
    SourceIndex idx;
    idx.key = Hash(Hash(mix.seed(), kPermuteTag), NameHash(src.name));
    if (o.pack) {
      idx.shard_start.push_back(0);
      for (const Shard& sh : src.shards)
        idx.shard_start.push_back(idx.shard_start.back() + sh.n_tokens());
      const uint64_t total = idx.shard_start.back();
      idx.n_windows = total >= window ? (total - 1) / o.seq_len : 0;
    } else {
      idx.cum_windows.push_back(0);
      for (uint32_t si = 0; si < src.shards.size(); ++si) {
        const auto off = src.shards[si].offsets();
        for (size_t d = 0; d + 1 < off.size(); ++d) {
          const uint64_t len = off[d + 1] - off[d];
          if (len < window) continue;
          idx.docs.push_back({si, off[d]});
          idx.cum_windows.push_back(idx.cum_windows.back() + (len - 1) / o.seq_len);
        }
      }
      idx.n_windows = idx.cum_windows.back();
    }
    if (idx.n_windows == 0)
      return Status::Errorf(
          "source '{}': no {} of seq_len + 1 = {} tokens ({} tokens in {} "
          "documents){}",
          src.name, o.pack ? "window" : "document", window, src.tokens, src.documents,
          o.pack ? "" : "; pack would join documents");
    CHECK(idx.n_windows < (uint64_t{1} << 62));
    s.sources_.push_back(std::move(idx));
    cum += src.probability;
    s.cum_probability_.push_back(cum);
  }
  s.cursors_.resize(s.sources_.size());
  return s;
}

int MixSampler::SelectSource(uint64_t sample) const {
  const uint64_t h = Hash(Hash(mix_->seed(), kSelectTag), sample);
  const double u = double(h >> 11) * 0x1.0p-53;  // uniform in [0, 1)
  const auto it = std::upper_bound(cum_probability_.begin(), cum_probability_.end(), u);
  return std::min<int>(int(it - cum_probability_.begin()), int(cum_probability_.size()) - 1);
}

void MixSampler::CopyWindow(int source, uint64_t w, int32_t* out,
                            std::vector<int>* doc_starts) const {
  const MixSource& src = mix_->sources()[source];
  const SourceIndex& idx = sources_[source];
  const uint64_t len = uint64_t(options_.seq_len) + 1;
  if (!options_.pack) {
    const size_t d = std::upper_bound(idx.cum_windows.begin(), idx.cum_windows.end(), w) -
                     idx.cum_windows.begin() - 1;
    const DocRef& doc = idx.docs[d];
    src.shards[doc.shard].Copy(doc.start + (w - idx.cum_windows[d]) * options_.seq_len, len, out);
    return;
  }
  // Pack: stream tokens [begin, begin + len), possibly across shards.
  const uint64_t begin = w * options_.seq_len;
  size_t si = std::upper_bound(idx.shard_start.begin(), idx.shard_start.end(), begin) -
              idx.shard_start.begin() - 1;
  for (uint64_t done = 0; done < len; ++si) {
    const Shard& shard = src.shards[si];
    const uint64_t a = begin + done - idx.shard_start[si];  // local range [a, b)
    const uint64_t b = std::min(shard.n_tokens(), a + (len - done));
    shard.Copy(a, b - a, out + done);
    // Document starts d in [a, b) (a shard's offset 0 starts its first document).
    const auto off = shard.offsets();
    for (auto it = std::lower_bound(off.begin(), off.end(), a); it != off.end() && *it < b; ++it) {
      const uint64_t p = done + (*it - a);
      if (p >= 1) doc_starts->push_back(static_cast<int>(p));
    }
    done += b - a;
  }
}

Batch MixSampler::Next() {
  const int world = options_.world_size, seq_len = options_.seq_len;
  Batch batch;
  batch.batch = options_.batch;
  batch.seq_len = seq_len;
  batch.tokens.resize(size_t(batch.batch) * (seq_len + 1));
  batch.source.resize(batch.batch);
  batch.sample.resize(batch.batch);
  batch.doc_starts.resize(batch.batch);
  const uint64_t global = uint64_t(batch.batch) * world;
  for (uint64_t j = 0; j < global; ++j) {
    const uint64_t i = next_sample_ + j;
    const int s = SelectSource(i);
    SourceCursor& c = cursors_[s];
    const SourceIndex& idx = sources_[s];
    const uint64_t w = Permute(c.position, idx.n_windows, Hash(idx.key, c.epoch));
    if (++c.position == idx.n_windows) c.position = 0, ++c.epoch;
    ++c.samples;
    c.tokens += seq_len;
    if (int(j % world) != options_.rank) continue;
    const int row = int(j / world);
    CopyWindow(s, w, batch.tokens.data() + size_t(row) * (seq_len + 1), &batch.doc_starts[row]);
    batch.source[row] = s;
    batch.sample[row] = i;
    c.rank_tokens += seq_len;
  }
  next_sample_ += global;
  return batch;
}

std::string MixSampler::SaveState() const {
  json sources = json::array();
  for (size_t s = 0; s < cursors_.size(); ++s) {
    const SourceCursor& c = cursors_[s];
    sources.push_back({{"name", mix_->sources()[s].name},
                       {"windows", sources_[s].n_windows},
                       {"epoch", c.epoch},
                       {"position", c.position},
                       {"samples", c.samples},
                       {"tokens", c.tokens},
                       {"rank_tokens", c.rank_tokens}});
  }
  const json j = {{"format", "herd-sampler-state"},
                  {"version", 1},
                  {"seed", mix_->seed()},
                  {"seq_len", options_.seq_len},
                  {"pack", options_.pack},
                  {"next_sample", next_sample_},
                  {"sources", sources}};
  return j.dump();
}

Status MixSampler::RestoreState(std::string_view text) {
  std::vector<SourceCursor> cursors(cursors_.size());
  uint64_t next = 0;
  try {
    const json j = json::parse(text);
    if (j.value("format", "") != "herd-sampler-state" || j.value("version", 0) != 1)
      return Status::Error("sampler state: not a herd-sampler-state version 1 object");
    if (j.at("seed").get<uint64_t>() != mix_->seed() ||
        j.at("seq_len").get<int>() != options_.seq_len || j.at("pack").get<bool>() != options_.pack)
      return Status::Errorf(
          "sampler state: saved with seed {}, seq_len {}, pack {}; this sampler "
          "has seed {}, seq_len {}, pack {}",
          j.at("seed").dump(), j.at("seq_len").dump(), j.at("pack").dump(), mix_->seed(),
          options_.seq_len, options_.pack);
    const json& src = j.at("sources");
    if (src.size() != cursors_.size())
      return Status::Errorf("sampler state: {} sources, the mix has {}", src.size(),
                            cursors_.size());
    for (size_t s = 0; s < cursors.size(); ++s) {
      const std::string& name = mix_->sources()[s].name;
      if (src[s].at("name").get<std::string>() != name ||
          src[s].at("windows").get<uint64_t>() != sources_[s].n_windows)
        return Status::Errorf(
            "sampler state: source {} is '{}' with {} windows; the mix has '{}' "
            "with {} (the data changed)",
            s, src[s].at("name").dump(), src[s].at("windows").dump(), name, sources_[s].n_windows);
      SourceCursor& c = cursors[s];
      c.epoch = src[s].at("epoch").get<uint64_t>();
      c.position = src[s].at("position").get<uint64_t>();
      c.samples = src[s].at("samples").get<uint64_t>();
      c.tokens = src[s].at("tokens").get<uint64_t>();
      c.rank_tokens = src[s].at("rank_tokens").get<uint64_t>();
      if (c.position >= sources_[s].n_windows)
        return Status::Errorf("sampler state: source '{}' position {} out of range", name,
                              c.position);
    }
    next = j.at("next_sample").get<uint64_t>();
  } catch (const json::exception& e) {
    return Status::Errorf("sampler state: {}", e.what());
  }
  cursors_ = std::move(cursors);
  next_sample_ = next;
  return Status::Ok();
}

}  // namespace herd
