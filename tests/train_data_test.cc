// Training data: sha256, token shards (round trip, headers, corruption), the licence policy, the
// mix file and its validation, and the window sampler (determinism, ranks, weights, document
// boundaries, packing, exact resume), the data card, and TokenizeCorpus's input errors.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "test_util.h"
#include "tokenizer/load.h"
#include "train/data_card.h"
#include "train/sampler.h"
#include "train/sha256.h"
#include "train/shard_writer.h"
#include "train/tokenize_corpus.h"

namespace herd {
namespace {

namespace fs = std::filesystem;
constexpr int32_t kVocab = 1000, kEos = 999, kBos = 998;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "herd_train_data_XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string operator/(const std::string& rel) const { return (fs::path(path_) / rel).string(); }

 private:
  std::string path_;
};

// Writes docs as a shard directory with a synthetic 1000-token vocabulary.
std::vector<std::string> WriteSource(const std::string& dir, const std::string& license,
                                     const std::vector<std::vector<int32_t>>& docs,
                                     uint64_t shard_tokens = 1 << 20,
                                     const std::string& fingerprint = "fp-a", bool bos = false) {
  ShardHeader meta;
  meta.source = fs::path(dir).filename().string();
  meta.license = license;
  meta.provenance = "made by train_data_test";
  meta.tokenizer_sha256 = "tok-sha";
  meta.tokenizer_fingerprint = fingerprint;
  meta.vocab_size = kVocab;
  meta.bos_id = kBos;
  meta.eos_id = kEos;
  meta.bos = bos;
  EXPECT_TRUE(PrepareShardDir(dir, false).ok());
  auto w = ShardWriter::Create(dir, meta, shard_tokens);
  EXPECT_TRUE(w.ok());
  const int in0 = (*w)->AddInput({"a.txt", Sha256Hex("a"), 1, 0});
  const int in1 = (*w)->AddInput({"b.jsonl", Sha256Hex("b"), 2, 0});
  for (size_t d = 0; d < docs.size(); ++d)
    EXPECT_TRUE((*w)->AddDocument(docs[d], d % 3 == 0 ? in0 : in1).ok());
  auto shards = (*w)->Finish();
  EXPECT_TRUE(shards.ok());
  return *shards;
}

// Documents whose tokens are a global counter (unique below kBos), lengths in [1, max_len].
std::vector<std::vector<int32_t>> CounterDocs(int n_docs, int max_len, int32_t* counter,
                                              uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::vector<int32_t>> docs(n_docs);
  for (auto& d : docs) {
    d.resize(1 + rng() % max_len);
    for (auto& t : d) t = (*counter)++;
  }
  EXPECT_LT(*counter, kBos);
  return docs;
}

std::string WriteMix(const TempDir& tmp, const std::string& body) {
  const std::string path = tmp / "mix.json";
  std::ofstream(path) << body;
  return path;
}

TEST(TrainDataSha256, KnownVectors) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Sha256 h;  // a million 'a' in uneven pieces
  const std::string chunk(997, 'a');
  size_t left = 1000000;
  for (; left >= chunk.size(); left -= chunk.size()) h.Update(chunk);
  h.Update(chunk.substr(0, left));
  EXPECT_EQ(h.HexDigest(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(TrainData, ShardRoundTripAndHeader) {
  TempDir tmp;
  int32_t counter = 0;
  const auto docs = CounterDocs(40, 20, &counter, 1);
  const auto written = WriteSource(tmp / "src", "CC0-1.0", docs, 50, "fp-a", true);
  ASSERT_GT(written.size(), 3u);  // documents never split: each shard holds >= 50 tokens
  auto shards = OpenShardDir(tmp / "src");
  ASSERT_TRUE(shards.ok()) << shards.status().message();
  ASSERT_EQ(shards->size(), written.size());
  size_t d = 0;
  uint64_t tokens = 0, input_docs = 0;
  for (const Shard& s : *shards) {
    const ShardHeader& h = s.header();
    EXPECT_EQ(h.version, 1);
    EXPECT_EQ(h.source, "src");
    EXPECT_EQ(h.license, "CC0-1.0");
    EXPECT_EQ(h.provenance, "made by train_data_test");
    EXPECT_EQ(h.tokenizer_fingerprint, "fp-a");
    EXPECT_EQ(h.eos_id, kEos);
    EXPECT_TRUE(h.bos);
    EXPECT_TRUE(s.Verify().ok());
    EXPECT_EQ(*Sha256File(tmp / ("src/" + h.bin_file)), h.bin_sha256);
    for (const auto& in : h.inputs) input_docs += in.documents;
    EXPECT_TRUE(s.n_tokens() >= 50 || &s == &shards->back());
    const auto off = s.offsets();
    for (size_t k = 0; k + 1 < off.size(); ++k, ++d) {
      std::vector<int32_t> got(off[k + 1] - off[k]), want = {kBos};
      s.Copy(off[k], got.size(), got.data());
      want.insert(want.end(), docs[d].begin(), docs[d].end());
      want.push_back(kEos);
      EXPECT_EQ(got, want) << "document " << d;
    }
    tokens += s.n_tokens();
  }
  EXPECT_EQ(d, docs.size());
  EXPECT_EQ(input_docs, docs.size());
  EXPECT_EQ(tokens, counter + 2 * docs.size());
}

TEST(TrainData, CorruptShardsAreRefused) {
  TempDir tmp;
  int32_t counter = 0;
  WriteSource(tmp / "src", "MIT", CounterDocs(5, 10, &counter, 2));
  const std::string bin = tmp / "src/shard-00000.bin";
  {  // flip one id: sizes still agree, Verify catches it
    std::fstream f(bin, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(4);
    const uint32_t big = 5000;
    f.write(reinterpret_cast<const char*>(&big), 4);
  }
  auto shards = OpenShardDir(tmp / "src");
  ASSERT_TRUE(shards.ok());
  EXPECT_NE(shards->front().Verify().message().find("sha256"), std::string::npos);
  fs::resize_file(bin, fs::file_size(bin) - 4);
  EXPECT_FALSE(OpenShardDir(tmp / "src").ok());
  EXPECT_FALSE(OpenShardDir(tmp / "nothing").ok());
  EXPECT_FALSE(ParseShardHeader(R"({"format": "herd-token-shard", "version": 2})", "x").ok());
}

TEST(TrainData, PrepareShardDirRefusesNonEmptyUnlessForced) {
  TempDir tmp;
  int32_t counter = 0;
  WriteSource(tmp / "src", "MIT", CounterDocs(3, 5, &counter, 3));
  std::ofstream(tmp / "src/README") << "keep me";
  EXPECT_NE(PrepareShardDir(tmp / "src", false).message().find("not empty"), std::string::npos);
  EXPECT_TRUE(PrepareShardDir(tmp / "src", true).ok());
  EXPECT_FALSE(fs::exists(tmp / "src/shard-00000.json"));
  EXPECT_TRUE(fs::exists(tmp / "src/README"));
}

TEST(TrainData, LicencePolicy) {
  for (const char* ok : {"CC-PDDC", "LicenseRef-PublicDomain", "Unlicense", "CC0-1.0", "cc-by-4.0",
                         "CC-BY-SA-3.0", "MIT", "Apache-2.0", "BSD-3-Clause", "GFDL-1.3-or-later",
                         "GPL-3.0-only", "CC-BY-SA-4.0 OR GFDL-1.3-or-later", "MIT AND CC0-1.0"})
    EXPECT_TRUE(CheckLicense(ok).ok()) << ok;
  for (const char* bad : {"", "unknown", "NOASSERTION", "NONE", "CC-BY-NC-4.0", "CC-BY-ND-4.0",
                          "Proprietary", "LicenseRef-Mine", "MIT AND LicenseRef-Mine", "CC-BY-"})
    EXPECT_FALSE(CheckLicense(bad).ok()) << bad;
  const LicensePolicy extra{{"LicenseRef-Mine", "unknown"}};
  EXPECT_TRUE(CheckLicense("LicenseRef-Mine", extra).ok());
  EXPECT_TRUE(CheckLicense("MIT AND LicenseRef-Mine", extra).ok());
  EXPECT_FALSE(CheckLicense("unknown", extra).ok());  // undeclared: never allowed
}

TEST(TrainData, MixFileValidation) {
  const auto parse = [](const std::string& j) { return ParseMix(j, "/base", "m.json"); };
  auto ok = parse(R"({"sources": [{"name": "a", "shards": "d/a", "weight": 2}], "seed": 7})");
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  EXPECT_EQ(ok->seed, 7u);
  EXPECT_EQ(ok->sources[0].weight, 2.0);
  for (const char* bad :
       {R"({"sources": []})", R"({"sources": [{"name": "a", "shards": "d", "weight": 0}]})",
        R"({"sources": [{"name": "a", "shards": "d", "weight": -1}]})",
        R"({"sources": [{"name": "a", "shards": "d"}]})",
        R"({"sources": [{"name": "a", "shards": "d", "weigth": 1}]})",
        R"({"sources": [{"name": "a", "shards": "d", "weight": 1}], "sed": 1})",
        R"({"sources": [{"name": "a", "shards": "d", "weight": 1},
                           {"name": "a", "shards": "e", "weight": 1}]})",
        R"({"sources": [{"name": "a", "shards": "d", "weight": 1}], "seed": -1})", "[1, 2"})
    EXPECT_FALSE(parse(bad).ok()) << bad;
}

TEST(TrainData, MixRefusesLicencesAndForeignTokenizers) {
  TempDir tmp;
  int32_t counter = 0;
  const auto docs = CounterDocs(5, 30, &counter, 4);
  WriteSource(tmp / "good", "CC-BY-4.0", docs);
  WriteSource(tmp / "unknown", "unknown", docs);
  WriteSource(tmp / "missing", "", docs);
  WriteSource(tmp / "mine", "LicenseRef-Mine", docs);
  WriteSource(tmp / "other_tok", "MIT", docs, 1 << 20, "fp-b");
  const auto open = [&](const std::string& second, MixOptions options = {}) {
    const std::string mix = WriteMix(tmp, R"({"sources": [{"name": "good", "shards": "good",
        "weight": 1}, {"name": "bad", "shards": ")" +
                                              second + R"(", "weight": 1}]})");
    return DataMix::OpenFile(mix, options);
  };
  auto good = open("good2");  // a directory that does not exist
  EXPECT_NE(good.status().message().find("source 'bad'"), std::string::npos);
  for (const char* dir : {"unknown", "missing", "mine"}) {
    auto r = open(dir);
    ASSERT_FALSE(r.ok()) << dir;
    EXPECT_NE(r.status().message().find("source 'bad'"), std::string::npos);
    EXPECT_NE(r.status().message().find(std::string(dir) + "/shard-00000.json"), std::string::npos)
        << r.status().message();
  }
  MixOptions mine;
  mine.licenses.extra_allowed = {"LicenseRef-Mine"};
  EXPECT_TRUE(open("mine", mine).ok());
  auto tok = open("other_tok");
  ASSERT_FALSE(tok.ok());
  EXPECT_NE(tok.status().message().find("one tokenizer"), std::string::npos);
  MixOptions model;
  model.tokenizer_fingerprint = "fp-model";
  WriteSource(tmp / "good2", "MIT", docs);
  EXPECT_NE(open("good2", model).status().message().find("model's tokenizer"), std::string::npos);
  model.tokenizer_fingerprint = "fp-a";
  EXPECT_TRUE(open("good2", model).ok());
}

// A mix of three sources of counter documents: token value -> (source, document).
struct Fixture {
  TempDir tmp;
  std::map<int32_t, std::pair<int, int>> doc_of;  // token -> (source, doc index in source)
  std::vector<std::vector<std::vector<int32_t>>> docs;
  std::string mix_path;
  explicit Fixture(int max_len = 30) {
    int32_t counter = 0;
    const double weights[] = {5, 3, 2};
    std::string sources;
    for (int s = 0; s < 3; ++s) {
      docs.push_back(CounterDocs(15 + 5 * s, max_len, &counter, 10 + s));
      for (size_t d = 0; d < docs[s].size(); ++d)
        for (int32_t t : docs[s][d]) doc_of[t] = {s, int(d)};
      const std::string name = "s" + std::to_string(s);
      WriteSource(tmp / name, "CC-PDDC", docs[s], 60);  // several shards each
      sources += (s ? ", " : "") + fmt::format(R"({{"name": "{}", "shards": "{}", "weight": {}}})",
                                               name, name, weights[s]);
    }
    mix_path = WriteMix(tmp, R"({"sources": [)" + sources + R"(], "seed": 1})");
  }
  DataMix Open() const { return std::move(DataMix::OpenFile(mix_path)).value(); }
};

MixSampler MakeSampler(const DataMix& mix, SamplerOptions o) {
  auto s = MixSampler::Create(mix, o);
  EXPECT_TRUE(s.ok()) << s.status().message();
  return std::move(s).value();
}

TEST(TrainDataSampler, DeterministicAndRanksPartitionTheStream) {
  Fixture f;
  const DataMix mix = f.Open();
  MixSampler one = MakeSampler(mix, {.seq_len = 8, .batch = 6});
  MixSampler again = MakeSampler(mix, {.seq_len = 8, .batch = 6});
  MixSampler r0 = MakeSampler(mix, {.seq_len = 8, .batch = 2, .rank = 0, .world_size = 3});
  MixSampler r1 = MakeSampler(mix, {.seq_len = 8, .batch = 2, .rank = 1, .world_size = 3});
  MixSampler r2 = MakeSampler(mix, {.seq_len = 8, .batch = 2, .rank = 2, .world_size = 3});
  for (int step = 0; step < 50; ++step) {
    const Batch b = one.Next();
    EXPECT_EQ(b.tokens, again.Next().tokens);
    const Batch parts[3] = {r0.Next(), r1.Next(), r2.Next()};
    for (int row = 0; row < 6; ++row) {  // global row = rank + world * local row
      const Batch& p = parts[row % 3];
      EXPECT_EQ(p.sample[row / 3], b.sample[row]);
      EXPECT_EQ(p.source[row / 3], b.source[row]);
      EXPECT_TRUE(std::ranges::equal(p.row(row / 3), b.row(row)));
    }
  }
  for (int s = 0; s < 3; ++s)
    EXPECT_EQ(
        r0.cursors()[s].rank_tokens + r1.cursors()[s].rank_tokens + r2.cursors()[s].rank_tokens,
        one.cursors()[s].tokens);
  MixSpec spec = std::move(LoadMixFile(f.mix_path)).value();
  spec.seed = 2;
  const DataMix other = std::move(DataMix::Open(spec)).value();
  EXPECT_NE(MakeSampler(other, {.seq_len = 8, .batch = 6}).Next().tokens,
            MakeSampler(mix, {.seq_len = 8, .batch = 6}).Next().tokens);
}

TEST(TrainDataSampler, WeightsRespected) {
  Fixture f;
  const DataMix mix = f.Open();
  MixSampler s = MakeSampler(mix, {.seq_len = 4, .batch = 100});
  const int n = 30000;
  std::vector<int> count(3);
  for (int i = 0; i < n / 100; ++i)
    for (int src : s.Next().source) ++count[src];
  // Binomial standard deviation sqrt(p(1-p)/n) <= 0.0029 at n = 30000: 0.012 is over 4 sigma.
  const double want[] = {0.5, 0.3, 0.2};
  for (int k = 0; k < 3; ++k) {
    EXPECT_NEAR(double(count[k]) / n, want[k], 0.012) << "source " << k;
    EXPECT_EQ(s.cursors()[k].samples, uint64_t(count[k]));
    EXPECT_EQ(s.cursors()[k].tokens, uint64_t(count[k]) * 4);
  }
}

TEST(TrainDataSampler, WindowsStayInsideDocumentsAndCoverEachEpoch) {
  Fixture f;
  const DataMix mix = f.Open();
  MixSampler s = MakeSampler(mix, {.seq_len = 5, .batch = 16});
  std::vector<std::map<int32_t, int>> starts(3);  // first token -> times served, per source
  for (int step = 0; step < 200; ++step) {
    const Batch b = s.Next();
    for (int r = 0; r < b.batch; ++r) {
      const auto row = b.row(r);
      ASSERT_NE(row[0], kEos);
      const auto [src, doc] = f.doc_of.at(row[0]);
      EXPECT_EQ(src, b.source[r]);
      for (int p = 1; p < 6; ++p) {
        if (row[p] == kEos) {  // the document's own eos ends it: last position only
          EXPECT_EQ(p, 5);
          EXPECT_EQ(row[p - 1], f.docs[src][doc].back());
        } else {
          EXPECT_EQ(row[p], row[p - 1] + 1);  // consecutive tokens of one document
          EXPECT_EQ(f.doc_of.at(row[p]).second, doc);
        }
      }
      EXPECT_TRUE(b.doc_starts[r].empty());
      ++starts[src][row[0]];
    }
  }
  for (int k = 0; k < 3;
       ++k) {  // every window once per completed epoch, the rest at most once more
    const SourceCursor& c = s.cursors()[k];
    EXPECT_EQ(starts[k].size(), c.epoch ? s.windows(k) : c.position);
    for (const auto& [first, times] : starts[k])
      EXPECT_TRUE(times == int(c.epoch) || times == int(c.epoch) + 1);
  }
}

TEST(TrainDataSampler, PackJoinsDocumentsAndReportsBoundaries) {
  Fixture f(/*max_len=*/4);  // documents shorter than a window
  const DataMix mix = f.Open();
  EXPECT_FALSE(MixSampler::Create(mix, {.seq_len = 8}).ok());  // no document is long enough
  MixSampler s = MakeSampler(mix, {.seq_len = 8, .batch = 8, .pack = true});
  int crossings = 0;
  for (int step = 0; step < 50; ++step) {
    const Batch b = s.Next();
    for (int r = 0; r < b.batch; ++r) {
      const auto row = b.row(r);
      std::vector<int> want;  // positions right after an eos start a document
      for (int p = 1; p <= 8; ++p)
        if (row[p - 1] == kEos) want.push_back(p);
      EXPECT_EQ(b.doc_starts[r], want);
      crossings += !want.empty();
      for (int p = 1; p <= 8; ++p)  // the stream is contiguous: next token or eos
        EXPECT_TRUE(row[p] == kEos || row[p - 1] == kEos || row[p] == row[p - 1] + 1) << p;
    }
  }
  EXPECT_GT(crossings, 300);
}

TEST(TrainDataSampler, ResumeIsExact) {
  Fixture f;
  const DataMix mix = f.Open();
  MixSampler a = MakeSampler(mix, {.seq_len = 8, .batch = 4, .pack = true});
  for (int i = 0; i < 7; ++i) a.Next();
  const std::string state = a.SaveState();
  std::vector<Batch> tail;
  for (int i = 0; i < 30; ++i) tail.push_back(a.Next());  // crosses epochs of the small sources
  MixSampler b = MakeSampler(mix, {.seq_len = 8, .batch = 4, .pack = true});
  ASSERT_TRUE(b.RestoreState(state).ok());
  for (const Batch& want : tail) {
    const Batch got = b.Next();
    EXPECT_EQ(got.tokens, want.tokens);
    EXPECT_EQ(got.sample, want.sample);
    EXPECT_EQ(got.doc_starts, want.doc_starts);
  }
  EXPECT_EQ(b.SaveState(), a.SaveState());
  // Two ranks resuming the same state continue the same global stream.
  MixSampler r1 =
      MakeSampler(mix, {.seq_len = 8, .batch = 2, .rank = 1, .world_size = 2, .pack = true});
  ASSERT_TRUE(r1.RestoreState(state).ok());
  EXPECT_TRUE(std::ranges::equal(r1.Next().row(0), tail[0].row(1)));
  MixSampler wrong = MakeSampler(mix, {.seq_len = 9, .batch = 4, .pack = true});
  EXPECT_FALSE(wrong.RestoreState(state).ok());
  EXPECT_FALSE(wrong.RestoreState("{").ok());
}

TEST(TrainData, DataCard) {
  Fixture f;
  const DataMix mix = f.Open();
  MixSampler s = MakeSampler(mix, {.seq_len = 8, .batch = 10});
  for (int i = 0; i < 5; ++i) s.Next();
  const auto card = nlohmann::json::parse(BuildDataCard(mix, &s));
  EXPECT_EQ(card["format"], "herd-data-card");
  EXPECT_EQ(card["tokenizer"]["fingerprint"], "fp-a");
  EXPECT_EQ(card["tokens_seen"], 50 * 8);
  ASSERT_EQ(card["sources"].size(), 3u);
  uint64_t seen = 0;
  for (size_t k = 0; k < 3; ++k) {
    const auto& src = card["sources"][k];
    EXPECT_EQ(src["name"], "s" + std::to_string(k));
    EXPECT_EQ(src["license"], "CC-PDDC");
    EXPECT_EQ(src["provenance"], "made by train_data_test");
    EXPECT_EQ(src["documents"], f.docs[k].size());
    EXPECT_EQ(src["inputs"].size(), 2u);
    EXPECT_EQ(
        src["inputs"][0]["documents"].get<size_t>() + src["inputs"][1]["documents"].get<size_t>(),
        f.docs[k].size());
    seen += src["tokens_seen"].get<uint64_t>();
  }
  EXPECT_EQ(seen, 400u);
}

TEST(TrainData, TokenizeCorpusNamesFileAndLine) {
  auto tok = LoadTokenizer(testing::Llama3TokenizerPath());
  ASSERT_TRUE(tok.ok()) << tok.status().message() << " (run scripts/setup)";
  TempDir tmp;
  std::ofstream(tmp / "good.txt") << "Hello, world";
  std::ofstream(tmp / "bad.txt") << "line one\nline \xff two\n";
  TokenizeCorpusOptions o;
  o.inputs = {tmp / "good.txt", tmp / "bad.txt"};
  o.out_dir = tmp / "out";
  o.source = "t";
  o.license = "MIT";
  o.batch_bytes = 1;  // the good file's shard is written before the bad file is read
  auto r = TokenizeCorpus(*tok, o, nullptr, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("bad.txt:2: invalid UTF-8 at column 6"), std::string::npos)
      << r.status().message();
  EXPECT_TRUE(fs::is_empty(tmp / "out"));  // partial shards removed
  o.inputs = {tmp / "good.txt"};
  r = TokenizeCorpus(*tok, o, nullptr, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().message();
  auto shards = OpenShardDir(tmp / "out");
  ASSERT_TRUE(shards.ok());
  std::vector<int32_t> ids(shards->front().n_tokens());
  shards->front().Copy(0, ids.size(), ids.data());
  EXPECT_EQ(ids, (std::vector<int32_t>{9906, 11, 1917, 128001}));
  EXPECT_EQ(shards->front().header().tokenizer_fingerprint, TokenizerFingerprint(*tok));
}

}  // namespace
}  // namespace herd
