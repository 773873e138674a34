// Tests of the .pth reader (io/zip, io/pickle, io/pth). The golden small.pth was written by real
// torch.save (tools/make_pth_golden.py); the malformed files are built here by a small ZIP writer
// and a pickle writer that follow the specs independently of the reader.
#include "io/pth.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "io/zip.h"

namespace herd {
namespace {

std::string SourcePath(const std::string& rel) { return std::string(HERD_SOURCE_DIR) + "/" + rel; }

void PutLE(std::string& out, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}

// Overwrites n little-endian bytes at `at`.
void Patch(std::string& b, size_t at, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) b[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

// ---- ZIP writer (APPNOTE: local headers, central directory, optional ZIP64 end records) ----

struct ZipEntry {
  std::string name;
  std::string data;
  uint16_t method = 0;
};

enum class Zip64 { kNone, kRecords, kSaturated };  // kRecords is what torch writes

std::string WriteZip(const std::vector<ZipEntry>& entries, Zip64 mode = Zip64::kRecords) {
  std::string out, cd;
  for (const ZipEntry& e : entries) {
    const uint64_t offset = out.size();
    PutLE(out, 0x04034b50, 4);
    PutLE(out, 20, 2);        // version needed
    PutLE(out, 0, 2);         // flags
    PutLE(out, e.method, 2);  // method
    PutLE(out, 0, 4);         // time, date
    PutLE(out, 0, 4);         // crc (not checked by herd)
    PutLE(out, e.data.size(), 4);
    PutLE(out, e.data.size(), 4);
    PutLE(out, e.name.size(), 2);
    PutLE(out, 0, 2);
    out += e.name + e.data;
    const bool sat = mode == Zip64::kSaturated;
    std::string extra;
    if (sat) {
      PutLE(extra, 0x0001, 2);
      PutLE(extra, 24, 2);
      PutLE(extra, e.data.size(), 8);
      PutLE(extra, e.data.size(), 8);
      PutLE(extra, offset, 8);
    }
    PutLE(cd, 0x02014b50, 4);
    PutLE(cd, 45, 2);  // made by
    PutLE(cd, 45, 2);  // version needed
    PutLE(cd, 0, 2);
    PutLE(cd, e.method, 2);
    PutLE(cd, 0, 4);
    PutLE(cd, 0, 4);
    PutLE(cd, sat ? 0xFFFFFFFF : e.data.size(), 4);
    PutLE(cd, sat ? 0xFFFFFFFF : e.data.size(), 4);
    PutLE(cd, e.name.size(), 2);
    PutLE(cd, extra.size(), 2);
    PutLE(cd, 0, 2);  // comment
    PutLE(cd, 0, 2);  // disk
    PutLE(cd, 0, 2);  // internal attributes
    PutLE(cd, 0, 4);  // external attributes
    PutLE(cd, sat ? 0xFFFFFFFF : offset, 4);
    cd += e.name + extra;
  }
  const uint64_t cd_offset = out.size();
  out += cd;
  if (mode != Zip64::kNone) {
    const uint64_t rec = out.size();
    PutLE(out, 0x06064b50, 4);
    PutLE(out, 44, 8);
    PutLE(out, 45, 2);
    PutLE(out, 45, 2);
    PutLE(out, 0, 4);
    PutLE(out, 0, 4);
    PutLE(out, entries.size(), 8);
    PutLE(out, entries.size(), 8);
    PutLE(out, cd.size(), 8);
    PutLE(out, cd_offset, 8);
    PutLE(out, 0x07064b50, 4);
    PutLE(out, 0, 4);
    PutLE(out, rec, 8);
    PutLE(out, 1, 4);
  }
  const bool sat = mode == Zip64::kSaturated;
  PutLE(out, 0x06054b50, 4);
  PutLE(out, 0, 4);  // disk, cd disk
  PutLE(out, sat ? 0xFFFF : entries.size(), 2);
  PutLE(out, sat ? 0xFFFF : entries.size(), 2);
  PutLE(out, sat ? 0xFFFFFFFF : cd.size(), 4);
  PutLE(out, sat ? 0xFFFFFFFF : cd_offset, 4);
  PutLE(out, 0, 2);  // comment
  return out;
}

// ---- Pickle writer (protocol 2 opcodes, as CPython's pickle emits them) ----

class Pickle {
 public:
  Pickle& Raw(std::string_view b) {
    bytes_ += b;
    return *this;
  }
  Pickle& Op(uint8_t op) {
    bytes_ += static_cast<char>(op);
    return *this;
  }
  Pickle& Proto(int p) { return Op(0x80).Op(static_cast<uint8_t>(p)); }
  Pickle& Global(std::string_view module, std::string_view name) {
    return Op('c').Raw(module).Raw("\n").Raw(name).Raw("\n");
  }
  Pickle& Str(std::string_view s) {
    Op('X');
    PutLE(bytes_, s.size(), 4);
    return Raw(s);
  }
  Pickle& Int(int64_t v) {
    if (v >= 0 && v < 256) return Op('K').Op(static_cast<uint8_t>(v));
    if (v >= 0 && v < 65536) {
      Op('M');
      PutLE(bytes_, static_cast<uint64_t>(v), 2);
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
      Op('J');
      PutLE(bytes_, static_cast<uint64_t>(v), 4);
    } else {
      Op(0x8a).Op(8);
      PutLE(bytes_, static_cast<uint64_t>(v), 8);
    }
    return *this;
  }
  Pickle& Ints(const std::vector<int64_t>& v) {
    Op('(');
    for (int64_t x : v) Int(x);
    return Op('t');
  }
  Pickle& EmptyOrderedDict() { return Global("collections", "OrderedDict").Op(')').Op('R'); }
  const std::string& bytes() const { return bytes_; }

 private:
  std::string bytes_;
};

struct TensorSpec {
  std::string name;
  std::string storage_type = "FloatStorage";
  std::string key = "0";
  int64_t storage_numel = 6;
  int64_t offset = 0;
  std::vector<int64_t> shape = {2, 3};
  std::vector<int64_t> stride = {3, 1};
};

// One _rebuild_tensor_v2(...) REDUCE, without memo references.
void PutTensor(Pickle& p, const TensorSpec& t) {
  p.Global("torch._utils", "_rebuild_tensor_v2").Op('(');
  p.Op('(').Str("storage").Global("torch", t.storage_type).Str(t.key).Str("cpu");
  p.Int(t.storage_numel).Op('t').Op('Q');
  p.Int(t.offset).Ints(t.shape).Ints(t.stride).Op(0x89).EmptyOrderedDict().Op('t').Op('R');
}

std::string StateDictPickle(const std::vector<TensorSpec>& tensors) {
  Pickle p;
  p.Proto(2).EmptyOrderedDict().Op('(');
  for (const TensorSpec& t : tensors) {
    p.Str(t.name);
    PutTensor(p, t);
  }
  return p.Op('u').Op('.').bytes();
}

std::string Floats(std::initializer_list<float> v) {
  std::string s(v.size() * 4, '\0');
  std::memcpy(s.data(), v.begin(), s.size());
  return s;
}

// A torch.save-shaped archive: <prefix>/data.pkl, byteorder, data/<key>..., version.
std::string TorchZip(const std::string& pickle, const std::map<std::string, std::string>& storages,
                     Zip64 mode = Zip64::kRecords, const std::string& prefix = "archive") {
  std::vector<ZipEntry> e = {{prefix + "/data.pkl", pickle}, {prefix + "/byteorder", "little"}};
  for (const auto& [key, bytes] : storages) e.push_back({prefix + "/data/" + key, bytes});
  e.push_back({prefix + "/version", "3\n"});
  return WriteZip(e, mode);
}

const std::string kSix = Floats({1, 2, 3, 4, 5, 6});

Result<TensorIndex> Parse(const std::string& bytes) {
  return ParsePth(std::make_shared<const std::string>(bytes), "model.pth");
}

// Expects an error whose message contains every one of `parts`.
void ExpectError(const std::string& bytes, std::initializer_list<std::string> parts) {
  auto r = Parse(bytes);
  ASSERT_FALSE(r.ok());
  for (const std::string& part : parts)
    EXPECT_NE(r.status().message().find(part), std::string::npos)
        << "'" << part << "' not in: " << r.status().message();
}

// ---- The golden written by torch.save ----

float Bf16ToF32(uint16_t h) {
  const uint32_t bits = uint32_t{h} << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

float F16ToF32(uint16_t h) {
  const int exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  const float sign = (h & 0x8000) ? -1.0f : 1.0f;
  if (exp == 0) return sign * std::ldexp(static_cast<float>(mant), -24);
  if (exp == 31) return mant ? NAN : sign * INFINITY;
  return sign * std::ldexp(static_cast<float>(mant + 1024), exp - 25);
}

double ValueAt(const TensorEntry& t, size_t i) {
  switch (t.dtype) {
    case DType::kBF16:
    case DType::kF16: {
      uint16_t h;
      std::memcpy(&h, t.data + 2 * i, 2);
      return t.dtype == DType::kBF16 ? Bf16ToF32(h) : F16ToF32(h);
    }
    case DType::kF32: {
      float f;
      std::memcpy(&f, t.data + 4 * i, 4);
      return f;
    }
    case DType::kI64: {
      int64_t v;
      std::memcpy(&v, t.data + 8 * i, 8);
      return static_cast<double>(v);
    }
    default:
      ADD_FAILURE() << "unexpected dtype";
      return 0;
  }
}

std::string Hex(const uint8_t* p, uint64_t n) {
  static const char* kDigits = "0123456789abcdef";
  std::string s;
  for (uint64_t i = 0; i < n; ++i) {
    s += kDigits[p[i] >> 4];
    s += kDigits[p[i] & 15];
  }
  return s;
}

TEST(PthGolden, MatchesTorchSave) {
  const std::string path = SourcePath("tests/golden/io/small.pth");
  auto index = LoadPth(path);
  ASSERT_TRUE(index.ok()) << index.status().message();
  std::ifstream f(SourcePath("tests/golden/io/small_pth.json"));
  ASSERT_TRUE(f.good());
  const nlohmann::json golden = nlohmann::json::parse(f);
  const auto& tensors = golden["tensors"];
  ASSERT_EQ(index->size(), tensors.size());
  for (size_t k = 0; k < tensors.size(); ++k) {
    const auto& want = tensors[k];
    const TensorEntry& t = index->entries()[k];  // pickle order = torch.save order
    SCOPED_TRACE(t.name);
    EXPECT_EQ(t.name, want["name"].get<std::string>());
    EXPECT_EQ(Name(t.dtype), want["dtype"].get<std::string>());
    EXPECT_EQ(t.shape, want["shape"].get<std::vector<int64_t>>());
    EXPECT_EQ(t.file, path);
    EXPECT_EQ(Hex(t.data, t.n_bytes), want["hex"].get<std::string>());
    const auto& values = want["values"];
    ASSERT_EQ(static_cast<size_t>(t.numel()), values.size());
    for (size_t i = 0; i < values.size(); ++i) {
      if (t.dtype == DType::kI64) {
        int64_t v;
        std::memcpy(&v, t.data + 8 * i, 8);
        EXPECT_EQ(v, values[i].get<int64_t>()) << i;
      } else {
        EXPECT_EQ(ValueAt(t, i), values[i].get<double>()) << i;  // exact
      }
    }
  }
  // The slice shares big's storage, 5 elements in: no copy was made.
  const TensorEntry* big = index->Find("big");
  const TensorEntry* rows = index->Find("big.rows_1_3");
  ASSERT_TRUE(big && rows);
  EXPECT_EQ(rows->data, big->data + 5 * 4);
  EXPECT_TRUE(index->Find("scalar")->shape.empty());
  EXPECT_EQ(index->Find("scalar")->n_bytes, 4u);
  EXPECT_EQ(index->Find("empty")->n_bytes, 0u);
}

TEST(PthGolden, EveryTruncationFailsCleanly) {
  std::ifstream f(SourcePath("tests/golden/io/small.pth"), std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(f)), {});
  ASSERT_GT(bytes.size(), 1000u);
  for (size_t n = 0; n < bytes.size(); ++n) EXPECT_FALSE(Parse(bytes.substr(0, n)).ok()) << n;
}

TEST(PthGolden, FuzzSeedLoads) {
  auto index = LoadPth(SourcePath("tests/fuzz/seeds/fuzz_pth/tiny.pth"));
  ASSERT_TRUE(index.ok()) << index.status().message();
  ASSERT_EQ(index->size(), 2u);
  EXPECT_EQ(index->Find("w")->dtype, DType::kBF16);
  EXPECT_EQ(ValueAt(*index->Find("w"), 5), 5.0);
}

// ---- Archives built here ----

TEST(Pth, ZipVariantsLoad) {
  const std::string pkl = StateDictPickle({{.name = "w"}});
  for (Zip64 mode : {Zip64::kNone, Zip64::kRecords, Zip64::kSaturated}) {
    auto index = Parse(TorchZip(pkl, {{"0", kSix}}, mode));
    ASSERT_TRUE(index.ok()) << index.status().message();
    const TensorEntry* w = index->Find("w");
    ASSERT_NE(w, nullptr);
    EXPECT_EQ(w->shape, (std::vector<int64_t>{2, 3}));
    EXPECT_EQ(w->n_bytes, 24u);
    EXPECT_EQ(ValueAt(*w, 5), 6.0);
  }
}

TEST(Pth, SharedStorageOffsetsAndDtypes) {
  const std::string pkl = StateDictPickle({
      {.name = "all", .storage_numel = 6, .shape = {6}, .stride = {1}},
      {.name = "tail", .storage_numel = 6, .offset = 4, .shape = {2}, .stride = {1}},
      {.name = "row", .storage_numel = 6, .offset = 3, .shape = {1, 3}, .stride = {99, 1}},
      {.name = "h",
       .storage_type = "HalfStorage",
       .key = "h",
       .storage_numel = 2,
       .shape = {2},
       .stride = {1}},
      {.name = "l",
       .storage_type = "LongStorage",
       .key = "l",
       .storage_numel = 1,
       .shape = {},
       .stride = {}},
  });
  auto index = Parse(
      TorchZip(pkl, {{"0", kSix}, {"h", std::string("\x00\x3c\x00\xc0", 4)}, {"l", "12345678"}}));
  ASSERT_TRUE(index.ok()) << index.status().message();
  EXPECT_EQ(index->Find("tail")->data, index->Find("all")->data + 16);
  EXPECT_EQ(ValueAt(*index->Find("tail"), 1), 6.0);
  EXPECT_EQ(ValueAt(*index->Find("row"), 0), 4.0);  // size-1 dims may have any stride
  EXPECT_EQ(index->Find("h")->dtype, DType::kF16);
  EXPECT_EQ(ValueAt(*index->Find("h"), 1), -2.0);
  EXPECT_EQ(index->Find("l")->dtype, DType::kI64);
  EXPECT_EQ(index->Find("l")->n_bytes, 8u);
}

TEST(Pth, Protocol4MemoAndParameter) {
  // FRAME, SHORT_BINUNICODE, STACK_GLOBAL, MEMOIZE, BINGET, a plain dict, _rebuild_parameter,
  // TUPLE1-3.
  auto s = [](std::string_view v) { return std::string("\x8c") + char(v.size()) + std::string(v); };
  Pickle q;
  q.Proto(4).Op(0x95).Raw(std::string(8, '\0')).Op('}').Op(0x94).Op('(');
  q.Raw(s("p")).Raw(s("torch._utils")).Raw(s("_rebuild_parameter")).Op(0x93);
  q.Raw(s("torch._utils")).Raw(s("_rebuild_tensor_v2")).Op(0x93).Op(0x94);  // memo 1
  q.Op('(').Op('(').Raw(s("storage")).Raw(s("torch")).Raw(s("FloatStorage")).Op(0x93);
  q.Raw(s("0")).Raw(s("cpu")).Int(6).Op('t').Op('Q').Int(0).Int(6).Op(0x85).Int(1).Op(0x85);
  q.Op(0x88).Op('}').Op('t').Op('R').Op(0x88).Op('}').Op(0x87).Op('R');
  q.Raw(s("again")).Op('h').Op(1).Op('(').Op('(').Raw(s("storage")).Raw(s("torch"));
  q.Raw(s("FloatStorage")).Op(0x93).Raw(s("0")).Raw(s("cpu")).Int(6).Op('t').Op('Q').Int(2);
  q.Int(4).Op(0x85).Int(1).Op(0x85).Op(0x89).Op('}').Op('t').Op('R');
  q.Op('u').Op('.');
  auto index = Parse(TorchZip(q.bytes(), {{"0", kSix}}));
  ASSERT_TRUE(index.ok()) << index.status().message();
  EXPECT_EQ(index->Find("p")->shape, std::vector<int64_t>{6});
  EXPECT_EQ(ValueAt(*index->Find("again"), 0), 3.0);
}

// ---- Malformed pickles ----

TEST(PthPickle, EveryTruncationOfThePickleFails) {
  const std::string pkl =
      StateDictPickle({{.name = "a"}, {.name = "b", .offset = 3, .shape = {3}, .stride = {1}}});
  ASSERT_TRUE(Parse(TorchZip(pkl, {{"0", kSix}})).ok());
  for (size_t n = 0; n < pkl.size(); ++n) {
    auto r = Parse(TorchZip(pkl.substr(0, n), {{"0", kSix}}));
    ASSERT_FALSE(r.ok()) << n;
    EXPECT_NE(r.status().message().find("model.pth: data.pkl offset"), std::string::npos)
        << r.status().message();
  }
}

TEST(PthPickle, CodeRunningGlobalsAreRefused) {
  for (auto [module, name] : {std::pair{"os", "system"},
                              {"posix", "system"},
                              {"builtins", "eval"},
                              {"builtins", "exec"},
                              {"torch", "load"},
                              {"collections", "deque"},
                              {"torch._utils", "_rebuild_qtensor"}}) {
    Pickle p;
    p.Proto(2).Global(module, name).Str("echo pwned").Op(0x85).Op('R').Op('.');
    const std::string global = std::string(module) + "." + name;
    ExpectError(TorchZip(p.bytes(), {}),
                {"model.pth: data.pkl offset 2: global '" + global + "' is not allowed",
                 "never runs code"});
    // The same through STACK_GLOBAL (protocol 4).
    Pickle q;
    q.Proto(4).Str(module).Str(name).Op(0x93).Str("x").Op(0x85).Op('R').Op('.');
    ExpectError(TorchZip(q.bytes(), {}), {"global '" + global + "' is not allowed"});
  }
  // A global hidden inside a tensor's arguments is refused just the same.
  Pickle p;
  p.Proto(2).EmptyOrderedDict().Op('(').Str("w").Global("torch._utils", "_rebuild_tensor_v2");
  p.Op('(').Global("builtins", "eval").Op('t').Op('R').Op('u').Op('.');
  ExpectError(TorchZip(p.bytes(), {}), {"global 'builtins.eval' is not allowed"});
}

TEST(PthPickle, RefusedOpcodes) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"i", "INST"},   {"o", "OBJ"},     {"\x81", "NEWOBJ"},         {"\x92", "NEWOBJ_EX"},
      {"P", "PERSID"}, {"\x82", "EXT1"}, {"\xff", "unknown opcode"}, {"S", "STRING"}};
  for (const auto& [op, name] : cases) {
    ExpectError(TorchZip(Pickle().Proto(2).Raw(op).Raw("os\nsystem\n").bytes(), {}),
                {"offset 2: opcode", name, "is not allowed"});
  }
  ExpectError(TorchZip(Pickle().Proto(1).Op('.').bytes(), {}), {"protocol 1"});
  // A storage type is data, not something to call.
  ExpectError(
      TorchZip(Pickle().Proto(2).Global("torch", "FloatStorage").Op(')').Op('R').bytes(), {}),
      {"'torch.FloatStorage' cannot be called"});
  // BUILD is allowed only to set a dict's state.
  ExpectError(TorchZip(Pickle().Proto(2).Op(']').Op('}').Op('b').Op('.').bytes(), {}),
              {"BUILD of a list"});
}

TEST(PthPickle, StructuralErrors) {
  auto run = [](const Pickle& p) { return TorchZip(p.bytes(), {{"0", kSix}}); };
  ExpectError(run(Pickle().Proto(2).Op('}').Op('}').Op('.')), {"STOP with 2 values"});
  ExpectError(run(Pickle().Proto(2).Op('0')), {"POP"});
  ExpectError(run(Pickle().Proto(2).Op('t')), {"no MARK"});
  ExpectError(run(Pickle().Proto(2).Op('R')), {"stack underflow"});
  ExpectError(run(Pickle().Proto(2).Op('}').Op('(').Op(0x85)), {"stack underflow"});
  ExpectError(run(Pickle().Proto(2).Op('h').Op(7)), {"memo entry 7"});
  ExpectError(run(Pickle().Proto(2).Op(']').Op('.')), {"holds a list, not a state_dict"});
  ExpectError(run(Pickle().Proto(2).Op('}').Str("k").Int(1).Op('s').Op('.')),
              {"value 'k' is a int, not a tensor"});
  ExpectError(run(Pickle().Proto(2).Op('}').Int(1).Int(1).Op('s').Op('.')), {"key is a int"});
  ExpectError(run(Pickle().Proto(2).Op(']').Int(1).Int(1).Op('s')), {"SETITEM on a list"});
  ExpectError(run(Pickle().Proto(2).Op('(').Str("storage").Op('t').Op('Q')), {"persistent id"});
  // Two tensors with one name.
  ExpectError(run(Pickle().Raw(StateDictPickle({{.name = "w"}, {.name = "w"}}))),
              {"'w' appears twice"});
  // One storage key named with two dtypes.
  ExpectError(
      TorchZip(StateDictPickle({{.name = "a"}, {.name = "b", .storage_type = "HalfStorage"}}),
               {{"0", kSix}}),
      {"storage '0' is named as"});
}

TEST(PthPickle, HugeCountsAndDeepNesting) {
  auto run = [](const Pickle& p) { return TorchZip(p.bytes(), {{"0", kSix}}); };
  ExpectError(run(Pickle().Proto(2).Raw("X\xff\xff\xff\xff")), {"needs 4294967295 bytes"});
  ExpectError(run(Pickle().Proto(4).Raw("\x8d").Raw(std::string(8, '\xff'))),
              {"needs 18446744073709551615 bytes"});
  ExpectError(run(Pickle().Proto(2).Raw("\x8a\xc8")), {"LONG1 integer of 200 bytes"});
  ExpectError(run(Pickle().Proto(2).Op('j').Raw("\xff\xff\xff\xff")), {"memo entry 4294967295"});
  ExpectError(run(Pickle().Proto(2).Op('c').Raw(std::string(1000, 'a'))), {"GLOBAL name"});
  // Nesting deeper than any C++ stack could recurse: bounded, never recursed over.
  Pickle marks;
  marks.Proto(2);
  for (int i = 0; i < 70000; ++i) marks.Op('(');
  ExpectError(run(marks), {"nested MARKs"});
  Pickle tuples;
  tuples.Proto(2).Op(')');
  for (int i = 0; i < 200000; ++i) tuples.Op(0x85);
  ExpectError(run(tuples.Op('.')), {"holds a tuple"});
  Pickle wide;
  wide.Proto(2);
  for (int i = 0; i < (1 << 20) + 1; ++i) wide.Op('N');
  ExpectError(run(wide), {"stack deeper than"});
}

// ---- Tensors that do not fit the reader ----

TEST(PthTensor, Errors) {
  auto one = [](TensorSpec t, std::map<std::string, std::string> storages = {{"0", kSix}}) {
    return TorchZip(StateDictPickle({t}), storages);
  };
  ExpectError(one({.name = "w", .shape = {3, 2}, .stride = {1, 3}}),
              {"model.pth: tensor 'w': stride (1, 3) is not contiguous row-major for size (3, 2)"});
  ExpectError(one({.name = "w", .shape = {2, 2}, .stride = {3, 1}}), {"not contiguous"});
  ExpectError(one({.name = "w", .key = "7"}), {"storage '7' has no entry 'archive/data/7'"});
  ExpectError(one({.name = "w"}, {{"0", kSix.substr(0, 20)}}),
              {"holds 20 bytes, too short for 6 f32"});
  ExpectError(one({.name = "w", .offset = 1}),
              {"elements [1, 7) lie outside storage '0' of 6 elements"});
  ExpectError(one({.name = "w", .storage_numel = int64_t{1} << 62}), {"too short"});
  ExpectError(one({.name = "w", .shape = {-1, 3}}), {"negative size"});
  ExpectError(one({.name = "w", .shape = {int64_t{1} << 40, int64_t{1} << 40}}), {"overflows"});
  ExpectError(one({.name = "w", .shape = {2, 3}, .stride = {3}}),
              {"size has 2 dims but stride has 1"});
  ExpectError(one({.name = "w", .offset = -1}), {"storage_offset"});
  ExpectError(one({.name = "w", .storage_type = "ComplexFloatStorage"}),
              {"global 'torch.ComplexFloatStorage' is not allowed"});
  // Empty tensors need no bytes, whatever their stride.
  auto empty =
      Parse(one({.name = "w", .storage_numel = 0, .shape = {0, 3}, .stride = {7, 7}}, {{"0", ""}}));
  ASSERT_TRUE(empty.ok()) << empty.status().message();
  EXPECT_EQ(empty->Find("w")->n_bytes, 0u);
}

// ---- Malformed archives ----

TEST(PthZip, Errors) {
  const std::string pkl = StateDictPickle({{.name = "w"}});
  // Deflated entries cannot be mapped.
  ExpectError(WriteZip({{"archive/data.pkl", pkl, 8}, {"archive/data/0", kSix}}),
              {"entry 'archive/data.pkl' is compressed (method 8, deflate)", "STORED"});
  ExpectError(WriteZip({{"archive/data.pkl", pkl}, {"archive/data/0", kSix, 8}}),
              {"'archive/data/0' is compressed"});
  ExpectError(WriteZip({{"archive/data/0", kSix}}), {"no '<archive>/data.pkl' entry"});
  ExpectError(WriteZip({{"a/data.pkl", pkl}, {"b/data.pkl", pkl}}), {"two pickles"});
  ExpectError(WriteZip({{"archive/data.pkl", pkl}, {"archive/data.pkl", pkl}}), {"appears twice"});
  ExpectError(WriteZip({{"archive/data.pkl", pkl}, {"archive/byteorder", "big"}}),
              {"byteorder is 'big'"});
  ExpectError(std::string("\x80\x02") + pkl, {"legacy torch.save format"});
  ExpectError("", {"not a ZIP archive"});
  ExpectError(std::string(100, 'x'), {"no end of central directory"});

  const std::string good = TorchZip(pkl, {{"0", kSix}}, Zip64::kNone);
  ASSERT_TRUE(Parse(good).ok());
  const size_t eocd = good.size() - 22;
  auto patched = [&](size_t at, uint64_t v, int n) {
    std::string b = good;
    Patch(b, at, v, n);
    return b;
  };
  const uint32_t cd_offset =
      static_cast<uint8_t>(good[eocd + 16]) | static_cast<uint8_t>(good[eocd + 17]) << 8;
  ExpectError(patched(eocd + 16, 0x7fffffff, 4), {"central directory", "outside the file"});
  ExpectError(patched(eocd + 12, 0x7fffffff, 4), {"outside the file"});
  ExpectError(patched(eocd + 10, 0xfffe, 2), {"65534 entries cannot fit"});
  ExpectError(patched(eocd + 10, 5, 2), {"expected a central directory header"});
  ExpectError(patched(eocd + 4, 1, 2), {"multi-disk"});
  ExpectError(patched(eocd + 16, 0xffffffff, 4), {"needs ZIP64 but no ZIP64 locator"});
  // First central header: local header offset past EOF, and a name running past the directory.
  ExpectError(patched(cd_offset + 42, 0x7ffffff0, 4), {"local header offset 2147483632 is past"});
  ExpectError(patched(cd_offset + 28, 0xffff, 2), {"runs past the directory"});
  ExpectError(patched(cd_offset + 42, 10, 4), {"no local header at offset 10"});
  ExpectError(patched(cd_offset + 20, 0x7fffffff, 4), {"compressed size"});
  ExpectError(patched(cd_offset + 20, 0xffffffff, 4), {"no ZIP64 extra field"});
  ExpectError(patched(cd_offset + 8, 1, 2), {"encrypted"});
  // The central directory cut short: drop its last byte and say so in the end record.
  {
    std::string b = good.substr(0, eocd - 1) + good.substr(eocd);
    b[b.size() - 22 + 12] = static_cast<char>(static_cast<uint8_t>(b[b.size() - 22 + 12]) - 1);
    ExpectError(b, {"central directory header runs past the directory"});
  }
  // The data of the first entry running past EOF (its sizes in the central directory).
  {
    std::string b = patched(cd_offset + 20, good.size(), 4);
    Patch(b, cd_offset + 24, good.size(), 4);
    ExpectError(b, {"runs past the end of the file"});
  }
  // ZIP64: locator pointing nowhere.
  const std::string z64 = TorchZip(pkl, {{"0", kSix}}, Zip64::kSaturated);
  ASSERT_TRUE(Parse(z64).ok());
  std::string bad = z64;
  Patch(bad, bad.size() - 22 - 20 + 8, 0x12345678, 8);
  ExpectError(bad, {"ZIP64 locator points to 305419896"});
}

TEST(PthZip, ArchiveApi) {
  const std::string bytes = WriteZip({{"x/b", "bee"}, {"x/a", ""}, {"x/c", "sea", 8}});
  auto zip = zip::Archive::Parse(bytes, "t.zip");
  ASSERT_TRUE(zip.ok()) << zip.status().message();
  ASSERT_EQ(zip->entries().size(), 3u);
  EXPECT_EQ(zip->entries()[0].name, "x/b");
  ASSERT_NE(zip->Find("x/a"), nullptr);
  EXPECT_EQ(zip->Find("x/zz"), nullptr);
  EXPECT_EQ(*zip->Data(*zip->Find("x/b")), "bee");
  EXPECT_EQ(*zip->Data(*zip->Find("x/a")), "");
  EXPECT_FALSE(zip->Data(*zip->Find("x/c")).ok());
}

}  // namespace
}  // namespace herd
