// torch.save-compatible writer; the layout is described at the top of pth_writer.h.
#include "io/pth_writer.h"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string_view>

#include "io/zip_writer.h"

namespace herd {
namespace {

static_assert(std::endian::native == std::endian::little, "torch.save byteorder 'little'");

std::optional<std::string_view> StorageClass(DType t) {
  switch (t) {
    case DType::kF32:
      return "FloatStorage";
    case DType::kF16:
      return "HalfStorage";
    case DType::kBF16:
      return "BFloat16Storage";
    case DType::kF64:
      return "DoubleStorage";
    case DType::kI64:
      return "LongStorage";
    case DType::kI32:
      return "IntStorage";
    case DType::kI16:
      return "ShortStorage";
    case DType::kI8:
      return "CharStorage";
    case DType::kU8:
      return "ByteStorage";
    case DType::kBool:
      return "BoolStorage";
    default:
      return std::nullopt;
  }
}

// Emits pickle protocol 2 opcodes the way CPython's pickler does: every string, non-empty tuple,
// global and REDUCE result is memoized (BINPUT) with consecutive indices; an object pickled again
// is fetched back (BINGET). Only opcodes io/pickle.cc reads are used.
class PickleWriter {
 public:
  PickleWriter() { Op(0x80).Op(2); }  // PROTO 2

  PickleWriter& Op(uint8_t op) {
    out_ += static_cast<char>(op);
    return *this;
  }
  // Memoizes the object just pushed; returns its memo index.
  uint32_t Put() {
    const uint32_t idx = next_memo_++;
    if (idx < 256) {
      Op('q').Op(static_cast<uint8_t>(idx));  // BINPUT
    } else {
      Op('r');  // LONG_BINPUT
      Le(idx, 4);
    }
    return idx;
  }
  void Get(uint32_t idx) {
    if (idx < 256) {
      Op('h').Op(static_cast<uint8_t>(idx));  // BINGET
    } else {
      Op('j');  // LONG_BINGET
      Le(idx, 4);
    }
  }
  // GLOBAL "module\nname\n", memoized; *memo caches the index for the next use.
  void Global(std::string_view module, std::string_view name, std::optional<uint32_t>* memo) {
    if (*memo) return Get(**memo);
    out_ += 'c';
    out_.append(module).append("\n").append(name).append("\n");
    *memo = Put();
  }
  // BINUNICODE, memoized.
  void Str(std::string_view s, std::optional<uint32_t>* memo = nullptr) {
    if (memo && *memo) return Get(**memo);
    Op('X');
    Le(s.size(), 4);
    out_.append(s);
    const uint32_t idx = Put();
    if (memo) *memo = idx;
  }
  // CPython's save_long: BININT1, BININT2, BININT, else LONG1 with the fewest two's complement
  // bytes.
  void Int(int64_t v) {
    if (v >= 0 && v < 256) {
      Op('K').Op(static_cast<uint8_t>(v));
    } else if (v >= 0 && v < 65536) {
      Op('M');
      Le(static_cast<uint64_t>(v), 2);
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
      Op('J');
      Le(static_cast<uint64_t>(v), 4);
    } else {
      int n = 1;
      while (n < 8 && (v >> (8 * n - 1)) != 0 && (v >> (8 * n - 1)) != -1) ++n;
      Op(0x8a).Op(static_cast<uint8_t>(n));  // LONG1
      Le(static_cast<uint64_t>(v), n);
    }
  }
  // A tuple of ints: EMPTY_TUPLE, TUPLE1-3 or MARK ... TUPLE; non-empty ones memoized.
  void IntTuple(const std::vector<int64_t>& v) {
    if (v.empty()) {
      Op(')');
      return;
    }
    if (v.size() > 3) Op('(');
    for (int64_t x : v) Int(x);
    Op(v.size() > 3 ? 't' : static_cast<uint8_t>(0x84 + v.size()));
    Put();
  }
  std::string Finish() {
    Op('.');  // STOP
    return std::move(out_);
  }

 private:
  void Le(uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out_ += static_cast<char>((v >> (8 * i)) & 0xff);
  }
  std::string out_;
  uint32_t next_memo_ = 0;
};

// Row-major strides as torch computes them for a contiguous tensor (a 0 dim counts as 1).
std::vector<int64_t> ContiguousStrides(const std::vector<int64_t>& shape) {
  std::vector<int64_t> stride(shape.size());
  int64_t s = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    stride[i] = s;
    s *= std::max<int64_t>(shape[i], 1);
  }
  return stride;
}

// The data.pkl of an OrderedDict holding `tensors`; tensor i uses storage key "i".
std::string StateDictPickle(const std::vector<TensorToWrite>& tensors) {
  constexpr size_t kBatch = 1000;  // CPython's BATCHSIZE for SETITEMS
  PickleWriter p;
  std::optional<uint32_t> ordered_dict, rebuild, storage_str, cpu_str;
  std::vector<std::optional<uint32_t>> storage_class(static_cast<size_t>(DType::kBool) + 1);
  p.Global("collections", "OrderedDict", &ordered_dict);
  p.Op(')').Op('R');  // OrderedDict()
  p.Put();
  for (size_t begin = 0; begin < tensors.size(); begin += kBatch) {
    const size_t end = std::min(tensors.size(), begin + kBatch);
    const bool batch = end - begin > 1;
    if (batch) p.Op('(');
    for (size_t i = begin; i < end; ++i) {
      const TensorToWrite& t = tensors[i];
      p.Str(t.name);
      p.Global("torch._utils", "_rebuild_tensor_v2", &rebuild);
      p.Op('(');
      // The persistent id ('storage', torch.<X>Storage, key, 'cpu', numel), then BINPERSID.
      p.Op('(');
      p.Str("storage", &storage_str);
      p.Global("torch", *StorageClass(t.dtype), &storage_class[static_cast<size_t>(t.dtype)]);
      p.Str(std::to_string(i));
      p.Str("cpu", &cpu_str);
      p.Int(static_cast<int64_t>(NumElements(t.shape)));
      p.Op('t');
      p.Put();
      p.Op('Q');
      p.Int(0);  // storage_offset
      p.IntTuple(t.shape);
      p.IntTuple(ContiguousStrides(t.shape));
      p.Op(0x89);  // requires_grad False
      p.Global("collections", "OrderedDict", &ordered_dict);
      p.Op(')').Op('R');  // backward hooks: OrderedDict()
      p.Put();
      p.Op('t');  // the six _rebuild_tensor_v2 arguments
      p.Put();
      p.Op('R');
      p.Put();
    }
    p.Op(batch ? 'u' : 's');  // SETITEMS / SETITEM
  }
  return p.Finish();
}

}  // namespace

std::string PthArchiveName(const std::string& path) {
  const std::string file = std::filesystem::path(path).filename().string();
  const std::string stem = file.substr(0, file.find('.'));
  return stem.empty() ? "archive" : stem;
}

Status WritePth(const std::string& path, const std::vector<TensorToWrite>& tensors) {
  return WritePth(path, tensors, PthWriteOptions{});
}

Status WritePth(const std::string& path, const std::vector<TensorToWrite>& tensors,
                const PthWriteOptions& options) {
  for (const TensorToWrite& t : tensors) {
    if (!StorageClass(t.dtype))
      return Status::Errorf(
          "{}: tensor '{}': dtype {} cannot be stored in a .pth (torch storages hold f32, f16, "
          "bf16, f64, i64, i32, i16, i8, u8, bool)",
          path, t.name, Name(t.dtype));
  }
  HERD_RETURN_IF_ERROR(ValidateTensorsToWrite(path, tensors));
  const std::string archive = PthArchiveName(path);
  const std::string pickle = StateDictPickle(tensors);

  HERD_ASSIGN_OR_RETURN(OutputFile file, OutputFile::Create(path));
  zip::Writer zip(&file, zip::WriterOptions{.alignment = 64, .zip64_limit = options.zip64_limit});
  HERD_RETURN_IF_ERROR(zip.Add(archive + "/data.pkl", pickle));
  HERD_RETURN_IF_ERROR(zip.Add(archive + "/byteorder", std::string("little")));
  for (size_t i = 0; i < tensors.size(); ++i)
    HERD_RETURN_IF_ERROR(
        zip.Add(fmt::format("{}/data/{}", archive, i), tensors[i].data, tensors[i].n_bytes));
  HERD_RETURN_IF_ERROR(zip.Add(archive + "/version", std::string("3\n")));
  HERD_RETURN_IF_ERROR(zip.Finish());
  return file.Commit();
}

}  // namespace herd
