#include "io/pickle.h"

#include <array>
#include <cstring>
#include <optional>
#include <unordered_map>

namespace herd::pickle {
namespace {

// Bounds far above what a state_dict needs (a Llama 3 405B shard: ~10^4 objects), low enough that
// a hostile pickle cannot make the reader allocate more than a few hundred MB.
constexpr size_t kMaxObjects = size_t{1} << 22;
constexpr size_t kMaxStack = size_t{1} << 20;
constexpr size_t kMaxMarks = size_t{1} << 16;
constexpr size_t kMaxMemo = size_t{1} << 22;
constexpr size_t kMaxDims = 64;
constexpr size_t kMaxGlobalLine = 256;

constexpr const char* kNoCode = "(herd reads tensors only; loading a checkpoint never runs code)";

enum class Kind : uint8_t {
  kNone,
  kBool,
  kInt,
  kFloat,
  kString,
  kTuple,
  kList,
  kDict,
  kGlobal,
  kStorage,
  kTensor,
};

const char* KindName(Kind k) {
  static constexpr std::array<const char*, 11> kNames = {"None",   "bool",    "int",   "float",
                                                         "str",    "tuple",   "list",  "dict",
                                                         "global", "storage", "tensor"};
  return kNames[static_cast<size_t>(k)];
}

enum class Global : uint8_t { kOrderedDict, kRebuildTensorV2, kRebuildParameter, kStorageType };

struct AllowedGlobal {
  std::string_view module, name;
  Global id;
  DType dtype;  // for storage types
};

constexpr std::array<AllowedGlobal, 13> kAllowedGlobals = {{
    {"collections", "OrderedDict", Global::kOrderedDict, DType::kF32},
    {"torch._utils", "_rebuild_tensor_v2", Global::kRebuildTensorV2, DType::kF32},
    {"torch._utils", "_rebuild_parameter", Global::kRebuildParameter, DType::kF32},
    {"torch", "FloatStorage", Global::kStorageType, DType::kF32},
    {"torch", "HalfStorage", Global::kStorageType, DType::kF16},
    {"torch", "BFloat16Storage", Global::kStorageType, DType::kBF16},
    {"torch", "DoubleStorage", Global::kStorageType, DType::kF64},
    {"torch", "LongStorage", Global::kStorageType, DType::kI64},
    {"torch", "IntStorage", Global::kStorageType, DType::kI32},
    {"torch", "ShortStorage", Global::kStorageType, DType::kI16},
    {"torch", "CharStorage", Global::kStorageType, DType::kI8},
    {"torch", "ByteStorage", Global::kStorageType, DType::kU8},
    {"torch", "BoolStorage", Global::kStorageType, DType::kBool},
}};

// Names of the opcodes this reader refuses, for messages (pickletools' names).
const char* RefusedOpcodeName(uint8_t op) {
  switch (op) {
    case 'i':
      return "INST";
    case 'o':
      return "OBJ";
    case 0x81:
      return "NEWOBJ";
    case 0x92:
      return "NEWOBJ_EX";
    case 0x82:
      return "EXT1";
    case 0x83:
      return "EXT2";
    case 0x84:
      return "EXT4";
    case 'P':
      return "PERSID";
    case 'I':
      return "INT";
    case 'L':
      return "LONG";
    case 'F':
      return "FLOAT";
    case 'S':
      return "STRING";
    case 'T':
      return "BINSTRING";
    case 'U':
      return "SHORT_BINSTRING";
    case 'V':
      return "UNICODE";
    case 'B':
      return "BINBYTES";
    case 'C':
      return "SHORT_BINBYTES";
    case 0x8e:
      return "BINBYTES8";
    case 0x96:
      return "BYTEARRAY8";
    case 0x97:
      return "NEXT_BUFFER";
    case 0x98:
      return "READONLY_BUFFER";
    case 0x8b:
      return "LONG4";
    case 'l':
      return "LIST";
    case 'd':
      return "DICT";
    case 'p':
      return "PUT";
    case 'g':
      return "GET";
    case '0':
      return "POP";
    case '1':
      return "POP_MARK";
    case '2':
      return "DUP";
    case 0x8f:
      return "EMPTY_SET";
    case 0x90:
      return "ADDITEMS";
    case 0x91:
      return "FROZENSET";
    default:
      return "unknown opcode";
  }
}

struct Object {
  Kind kind = Kind::kNone;
  Global global = Global::kOrderedDict;  // kGlobal
  DType dtype = DType::kF32;             // kGlobal storage types
  int64_t i = 0;                // kBool, kInt; index into storages / tensors for kStorage / kTensor
  double f = 0;                 // kFloat
  std::string_view s;           // kString (a view into the pickle)
  std::vector<uint32_t> items;  // kTuple, kList; kDict as key, value, key, value, ...
};

class Unpickler {
 public:
  Unpickler(std::string_view data, std::string_view where) : data_(data), where_(where) {}
  Result<StateDict> Run();

 private:
  template <typename... Args>
  Status Fail(fmt::format_string<Args...> f, Args&&... args) const {
    return Status::Errorf("{} offset {}: {}", where_, op_start_,
                          fmt::format(f, std::forward<Args>(args)...));
  }
  Status Step(uint8_t op, bool& stop);
  Status StepContainer(uint8_t op);
  Status StepScalar(uint8_t op);
  Status StepMemo(uint8_t op);

  Result<std::string_view> Take(uint64_t n);
  Result<uint64_t> TakeUint(int n_bytes);
  Result<std::string_view> TakeLine();
  Result<uint32_t> New(Object obj);
  Status Push(uint32_t id);
  Result<uint32_t> Pop();
  Result<uint32_t> Top() const;
  Result<std::vector<uint32_t>> PopToMark();
  Status PushGlobal(std::string_view module, std::string_view name);
  Status Reduce();
  Status PersistentLoad();
  Result<uint32_t> RebuildTensor(const std::vector<uint32_t>& args);
  Result<std::vector<int64_t>> IntTuple(uint32_t id, const char* what);
  Result<StateDict> Finish(uint32_t root);

  std::string_view data_;
  std::string_view where_;
  size_t pos_ = 0;
  size_t op_start_ = 0;
  std::vector<Object> objects_;
  std::vector<uint32_t> stack_;
  std::vector<size_t> marks_;  // stack sizes at each open MARK
  std::unordered_map<uint64_t, uint32_t> memo_;
  StateDict out_;
  std::vector<Tensor> tensors_;
  std::unordered_map<std::string_view, size_t> storage_by_key_;
};

Result<std::string_view> Unpickler::Take(uint64_t n) {
  if (n > data_.size() - pos_)
    return Fail("needs {} bytes, only {} remain (truncated pickle?)", n, data_.size() - pos_);
  std::string_view v = data_.substr(pos_, n);
  pos_ += n;
  return v;
}

Result<uint64_t> Unpickler::TakeUint(int n_bytes) {
  HERD_ASSIGN_OR_RETURN(std::string_view b, Take(n_bytes));
  uint64_t v = 0;
  for (int i = n_bytes - 1; i >= 0; --i) v = v << 8 | static_cast<uint8_t>(b[i]);
  return v;
}

Result<std::string_view> Unpickler::TakeLine() {
  const size_t nl = data_.find('\n', pos_);
  if (nl == std::string_view::npos || nl - pos_ > kMaxGlobalLine)
    return Fail("GLOBAL name is not a line of at most {} bytes", kMaxGlobalLine);
  std::string_view line = data_.substr(pos_, nl - pos_);
  pos_ = nl + 1;
  return line;
}

Result<uint32_t> Unpickler::New(Object obj) {
  if (objects_.size() >= kMaxObjects) return Fail("more than {} objects", kMaxObjects);
  objects_.push_back(std::move(obj));
  return static_cast<uint32_t>(objects_.size() - 1);
}

Status Unpickler::Push(uint32_t id) {
  if (stack_.size() >= kMaxStack) return Fail("stack deeper than {}", kMaxStack);
  stack_.push_back(id);
  return Status::Ok();
}

Result<uint32_t> Unpickler::Top() const {
  if (stack_.size() <= (marks_.empty() ? 0 : marks_.back())) return Fail("stack underflow");
  return stack_.back();
}

Result<uint32_t> Unpickler::Pop() {
  HERD_ASSIGN_OR_RETURN(uint32_t id, Top());
  stack_.pop_back();
  return id;
}

Result<std::vector<uint32_t>> Unpickler::PopToMark() {
  if (marks_.empty()) return Fail("no MARK to pop to");
  const size_t base = marks_.back();
  marks_.pop_back();
  std::vector<uint32_t> items(stack_.begin() + base, stack_.end());
  stack_.resize(base);
  return items;
}

Status Unpickler::PushGlobal(std::string_view module, std::string_view name) {
  for (const AllowedGlobal& g : kAllowedGlobals) {
    if (g.module == module && g.name == name) {
      Object o;
      o.kind = Kind::kGlobal;
      o.global = g.id;
      o.dtype = g.dtype;
      o.s = g.name;
      HERD_ASSIGN_OR_RETURN(uint32_t id, New(std::move(o)));
      return Push(id);
    }
  }
  return Fail("global '{}.{}' is not allowed {}", module, name, kNoCode);
}

Result<std::vector<int64_t>> Unpickler::IntTuple(uint32_t id, const char* what) {
  const Object& t = objects_[id];
  if (t.kind != Kind::kTuple) return Fail("tensor {} is a {}, not a tuple", what, KindName(t.kind));
  if (t.items.size() > kMaxDims) return Fail("tensor {} has more than {} dims", what, kMaxDims);
  std::vector<int64_t> v;
  for (uint32_t item : t.items) {
    if (objects_[item].kind != Kind::kInt)
      return Fail("tensor {} holds a {}, not an int", what, KindName(objects_[item].kind));
    v.push_back(objects_[item].i);
  }
  return v;
}

// torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
// backward_hooks[, metadata]).
Result<uint32_t> Unpickler::RebuildTensor(const std::vector<uint32_t>& args) {
  if (args.size() != 6 && args.size() != 7)
    return Fail("_rebuild_tensor_v2 takes 6 or 7 arguments, got {}", args.size());
  const Object& storage = objects_[args[0]];
  if (storage.kind != Kind::kStorage)
    return Fail("_rebuild_tensor_v2 storage is a {}, not a persistent storage",
                KindName(storage.kind));
  const Object& offset = objects_[args[1]];
  if (offset.kind != Kind::kInt || offset.i < 0)
    return Fail("_rebuild_tensor_v2 storage_offset is not a non-negative int");
  Tensor t;
  t.storage = static_cast<size_t>(storage.i);
  t.storage_offset = offset.i;
  HERD_ASSIGN_OR_RETURN(t.shape, IntTuple(args[2], "size"));
  HERD_ASSIGN_OR_RETURN(t.stride, IntTuple(args[3], "stride"));
  if (t.shape.size() != t.stride.size())
    return Fail("tensor size has {} dims but stride has {}", t.shape.size(), t.stride.size());
  if (objects_[args[4]].kind != Kind::kBool) return Fail("requires_grad is not a bool");
  if (objects_[args[5]].kind != Kind::kDict) return Fail("backward_hooks is not a dict");
  if (args.size() == 7 && objects_[args[6]].kind != Kind::kDict)
    return Fail("tensor metadata is not a dict");
  Object o;
  o.kind = Kind::kTensor;
  o.i = static_cast<int64_t>(tensors_.size());
  tensors_.push_back(std::move(t));
  return New(std::move(o));
}

Status Unpickler::Reduce() {
  HERD_ASSIGN_OR_RETURN(uint32_t args_id, Pop());
  HERD_ASSIGN_OR_RETURN(uint32_t fn_id, Pop());
  const Object& fn = objects_[fn_id];
  if (fn.kind != Kind::kGlobal) return Fail("REDUCE calls a {}, not a global", KindName(fn.kind));
  if (objects_[args_id].kind != Kind::kTuple) return Fail("REDUCE arguments are not a tuple");
  const std::vector<uint32_t> args = objects_[args_id].items;
  uint32_t result = 0;
  switch (fn.global) {
    case Global::kOrderedDict: {
      if (!args.empty()) return Fail("OrderedDict() takes no arguments here");
      Object d;
      d.kind = Kind::kDict;
      HERD_ASSIGN_OR_RETURN(result, New(std::move(d)));
      break;
    }
    case Global::kRebuildTensorV2: {
      HERD_ASSIGN_OR_RETURN(result, RebuildTensor(args));
      break;
    }
    case Global::kRebuildParameter:  // (data, requires_grad, backward_hooks): the data tensor
      if (args.size() != 3 || objects_[args[0]].kind != Kind::kTensor)
        return Fail("_rebuild_parameter takes (tensor, requires_grad, backward_hooks)");
      result = args[0];
      break;
    case Global::kStorageType:
      return Fail("global 'torch.{}' cannot be called {}", fn.s, kNoCode);
  }
  return Push(result);
}

// BINPERSID with ('storage', torch.<Type>Storage, key, location, numel).
Status Unpickler::PersistentLoad() {
  HERD_ASSIGN_OR_RETURN(uint32_t pid_id, Pop());
  const Object& pid = objects_[pid_id];
  auto kind_at = [&](size_t i) { return objects_[pid.items[i]].kind; };
  if (pid.kind != Kind::kTuple || pid.items.size() != 5 || kind_at(0) != Kind::kString ||
      objects_[pid.items[0]].s != "storage" || kind_at(1) != Kind::kGlobal ||
      objects_[pid.items[1]].global != Global::kStorageType || kind_at(2) != Kind::kString ||
      kind_at(3) != Kind::kString || kind_at(4) != Kind::kInt || objects_[pid.items[4]].i < 0)
    return Fail("persistent id is not ('storage', torch.<Type>Storage, key, location, numel) {}",
                kNoCode);
  const DType dtype = objects_[pid.items[1]].dtype;
  const std::string_view key = objects_[pid.items[2]].s;
  const uint64_t numel = static_cast<uint64_t>(objects_[pid.items[4]].i);
  auto [it, fresh] = storage_by_key_.emplace(key, out_.storages.size());
  if (fresh) {
    out_.storages.push_back(Storage{dtype, std::string(key), numel});
  } else {
    const Storage& s = out_.storages[it->second];
    if (s.dtype != dtype || s.numel != numel)
      return Fail("storage '{}' is named as {} x {} and as {} x {}", key, s.numel, Name(s.dtype),
                  numel, Name(dtype));
  }
  Object o;
  o.kind = Kind::kStorage;
  o.i = static_cast<int64_t>(it->second);
  HERD_ASSIGN_OR_RETURN(uint32_t id, New(std::move(o)));
  return Push(id);
}

Status Unpickler::StepScalar(uint8_t op) {
  Object o;
  switch (op) {
    case 'N':
      o.kind = Kind::kNone;
      break;  // NONE
    case 0x88:
    case 0x89:
      o.kind = Kind::kBool;
      o.i = op == 0x88;
      break;     // NEWTRUE, NEWFALSE
    case 'J': {  // BININT
      HERD_ASSIGN_OR_RETURN(uint64_t v, TakeUint(4));
      o.kind = Kind::kInt;
      o.i = static_cast<int32_t>(static_cast<uint32_t>(v));
      break;
    }
    case 'K':
    case 'M': {  // BININT1, BININT2
      HERD_ASSIGN_OR_RETURN(o.i, TakeUint(op == 'K' ? 1 : 2));
      o.kind = Kind::kInt;
      break;
    }
    case 0x8a: {  // LONG1: n bytes of little-endian two's complement
      HERD_ASSIGN_OR_RETURN(uint64_t n, TakeUint(1));
      if (n > 8) return Fail("LONG1 integer of {} bytes does not fit in 64 bits", n);
      HERD_ASSIGN_OR_RETURN(uint64_t v, TakeUint(static_cast<int>(n)));
      if (n > 0 && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~uint64_t{0} << (8 * n);  // sign-extend
      o.kind = Kind::kInt;
      o.i = static_cast<int64_t>(v);
      break;
    }
    case 'G': {  // BINFLOAT: big-endian IEEE double
      HERD_ASSIGN_OR_RETURN(std::string_view b, Take(8));
      uint64_t bits = 0;
      for (char c : b) bits = bits << 8 | static_cast<uint8_t>(c);
      o.kind = Kind::kFloat;
      std::memcpy(&o.f, &bits, sizeof(bits));
      break;
    }
    default: {  // 'X' BINUNICODE, 0x8c SHORT_BINUNICODE, 0x8d BINUNICODE8
      HERD_ASSIGN_OR_RETURN(uint64_t n, TakeUint(op == 0x8c ? 1 : op == 'X' ? 4 : 8));
      HERD_ASSIGN_OR_RETURN(o.s, Take(n));
      o.kind = Kind::kString;
      break;
    }
  }
  HERD_ASSIGN_OR_RETURN(uint32_t id, New(std::move(o)));
  return Push(id);
}

Status Unpickler::StepContainer(uint8_t op) {
  if (op == '(') {  // MARK
    if (marks_.size() >= kMaxMarks) return Fail("more than {} nested MARKs", kMaxMarks);
    marks_.push_back(stack_.size());
    return Status::Ok();
  }
  if (op == 's' || op == 'u' || op == 'a' || op == 'e') {  // SETITEM(S), APPEND(S)
    std::vector<uint32_t> items;
    if (op == 's' || op == 'a') {
      HERD_ASSIGN_OR_RETURN(uint32_t value, Pop());
      if (op == 's') {
        HERD_ASSIGN_OR_RETURN(uint32_t key, Pop());
        items.push_back(key);
      }
      items.push_back(value);
    } else {
      HERD_ASSIGN_OR_RETURN(items, PopToMark());
    }
    HERD_ASSIGN_OR_RETURN(uint32_t target, Top());
    const Kind want = op == 's' || op == 'u' ? Kind::kDict : Kind::kList;
    if (objects_[target].kind != want)
      return Fail("{} on a {}", op == 's' || op == 'u' ? "SETITEM" : "APPEND",
                  KindName(objects_[target].kind));
    if (want == Kind::kDict && items.size() % 2 != 0) return Fail("SETITEMS with an odd count");
    auto& dst = objects_[target].items;
    dst.insert(dst.end(), items.begin(), items.end());
    return Status::Ok();
  }
  Object o;
  if (op == '}' || op == ')' || op == ']') {  // EMPTY_DICT, EMPTY_TUPLE, EMPTY_LIST
    o.kind = op == '}' ? Kind::kDict : op == ')' ? Kind::kTuple : Kind::kList;
  } else if (op == 't') {  // TUPLE
    o.kind = Kind::kTuple;
    HERD_ASSIGN_OR_RETURN(o.items, PopToMark());
  } else {  // TUPLE1..3
    o.kind = Kind::kTuple;
    o.items.resize(op - 0x84);
    for (size_t i = o.items.size(); i-- > 0;) {
      HERD_ASSIGN_OR_RETURN(o.items[i], Pop());
    }
  }
  HERD_ASSIGN_OR_RETURN(uint32_t id, New(std::move(o)));
  return Push(id);
}

Status Unpickler::StepMemo(uint8_t op) {
  if (op == 'h' || op == 'j') {  // BINGET, LONG_BINGET
    HERD_ASSIGN_OR_RETURN(uint64_t idx, TakeUint(op == 'h' ? 1 : 4));
    auto it = memo_.find(idx);
    if (it == memo_.end()) return Fail("memo entry {} is not defined", idx);
    return Push(it->second);
  }
  uint64_t idx = memo_.size();  // MEMOIZE
  if (op != 0x94) {             // BINPUT, LONG_BINPUT
    HERD_ASSIGN_OR_RETURN(idx, TakeUint(op == 'q' ? 1 : 4));
  }
  HERD_ASSIGN_OR_RETURN(uint32_t top, Top());
  if (memo_.size() >= kMaxMemo && !memo_.count(idx))
    return Fail("more than {} memo entries", kMaxMemo);
  memo_[idx] = top;
  return Status::Ok();
}

Status Unpickler::Step(uint8_t op, bool& stop) {
  switch (op) {
    case 0x80: {  // PROTO
      HERD_ASSIGN_OR_RETURN(uint64_t proto, TakeUint(1));
      if (proto < 2 || proto > 5) return Fail("pickle protocol {} (expected 2 to 5)", proto);
      return Status::Ok();
    }
    case 0x95:  // FRAME: an 8-byte length; frames only group opcodes, so it is skipped
      return TakeUint(8).status();
    case '.':  // STOP
      stop = true;
      return Status::Ok();
    case 'N':
    case 0x88:
    case 0x89:
    case 'J':
    case 'K':
    case 'M':
    case 0x8a:
    case 'G':
    case 'X':
    case 0x8c:
    case 0x8d:
      return StepScalar(op);
    case '(':
    case '}':
    case ')':
    case ']':
    case 't':
    case 0x85:
    case 0x86:
    case 0x87:
    case 's':
    case 'u':
    case 'a':
    case 'e':
      return StepContainer(op);
    case 'q':
    case 'r':
    case 0x94:
    case 'h':
    case 'j':
      return StepMemo(op);
    case 'c': {  // GLOBAL "module\nname\n"
      HERD_ASSIGN_OR_RETURN(std::string_view module, TakeLine());
      HERD_ASSIGN_OR_RETURN(std::string_view name, TakeLine());
      return PushGlobal(module, name);
    }
    case 0x93: {  // STACK_GLOBAL: module and name strings from the stack
      HERD_ASSIGN_OR_RETURN(uint32_t name, Pop());
      HERD_ASSIGN_OR_RETURN(uint32_t module, Pop());
      if (objects_[name].kind != Kind::kString || objects_[module].kind != Kind::kString)
        return Fail("STACK_GLOBAL needs two strings");
      return PushGlobal(objects_[module].s, objects_[name].s);
    }
    case 'R':  // REDUCE
      return Reduce();
    case 'Q':  // BINPERSID
      return PersistentLoad();
    case 'b': {  // BUILD: only the state (e.g. '_metadata') of a state_dict OrderedDict, ignored
      HERD_ASSIGN_OR_RETURN(uint32_t state, Pop());
      HERD_ASSIGN_OR_RETURN(uint32_t target, Top());
      if (objects_[target].kind != Kind::kDict || objects_[state].kind != Kind::kDict)
        return Fail("BUILD of a {} with a {} state is not allowed {}",
                    KindName(objects_[target].kind), KindName(objects_[state].kind), kNoCode);
      return Status::Ok();
    }
    default:
      return Fail("opcode 0x{:02x} ({}) is not allowed {}", op, RefusedOpcodeName(op), kNoCode);
  }
}

Result<StateDict> Unpickler::Finish(uint32_t root) {
  const Object& dict = objects_[root];
  if (dict.kind != Kind::kDict)
    return Fail("the pickle holds a {}, not a state_dict (a dict of tensors)", KindName(dict.kind));
  for (size_t i = 0; i + 1 < dict.items.size(); i += 2) {
    const Object& key = objects_[dict.items[i]];
    const Object& value = objects_[dict.items[i + 1]];
    if (key.kind != Kind::kString) return Fail("state_dict key is a {}", KindName(key.kind));
    if (value.kind != Kind::kTensor)
      return Fail("state_dict value '{}' is a {}, not a tensor", key.s, KindName(value.kind));
    out_.tensors.emplace_back(std::string(key.s), tensors_[static_cast<size_t>(value.i)]);
  }
  return std::move(out_);
}

Result<StateDict> Unpickler::Run() {
  bool stop = false;
  while (!stop) {
    op_start_ = pos_;
    if (pos_ >= data_.size()) return Fail("pickle ends without STOP (truncated?)");
    const uint8_t op = static_cast<uint8_t>(data_[pos_++]);
    HERD_RETURN_IF_ERROR(Step(op, stop));
  }
  if (!marks_.empty() || stack_.size() != 1)
    return Fail("STOP with {} values and {} open MARKs on the stack (expected one value)",
                stack_.size(), marks_.size());
  return Finish(stack_.back());
}

}  // namespace

Result<StateDict> LoadStateDict(std::string_view pickle, std::string_view where) {
  return Unpickler(pickle, where).Run();
}

}  // namespace herd::pickle
