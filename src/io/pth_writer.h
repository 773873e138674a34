// torch.save-compatible writer for a state_dict of contiguous tensors, as Meta's
// consolidated.NN.pth (the reader and the format are in pth.h). The archive is what torch.save
// (zip format, pickle protocol 2) writes for an OrderedDict of tensors:
//   <archive>/data.pkl      the pickle, byte for byte what CPython's pickler emits for it:
//                             \x80\x02 GLOBAL 'collections OrderedDict' ) REDUCE
//                             per batch of up to 1000 tensors: MARK {name tensor} SETITEMS
//                             (a single leftover item: name tensor SETITEM), then STOP
//                           with each tensor
//                             GLOBAL 'torch._utils _rebuild_tensor_v2' (
//                               ( 'storage' GLOBAL 'torch <X>Storage' key 'cpu' numel ) BINPERSID
//                               0 size-tuple stride-tuple False OrderedDict() ) REDUCE
//                           and every object memoized (BINPUT) and repeats fetched (BINGET) as
//                           CPython does. Storage keys are "0", "1", ... in the order given.
//   <archive>/byteorder     "little"
//   <archive>/data/<key>    one storage per tensor: its bytes, payload 64-byte aligned
//   <archive>/version       "3\n"
// <archive> is the file name up to its first '.' ("consolidated" for consolidated.00.pth, as in
// Meta's files; "archive" if that is empty). torch 2.x's own torch.save strips only the last
// extension ("consolidated.00"); torch.load and herd's reader accept any folder name. Entries are
// STORED with CRC-32s; ZIP64 fields appear only where a size or offset needs them (see
// io/zip_writer.h), so an 8B bf16 checkpoint (16 GB) is fine. Storage classes: f32 FloatStorage,
// f16 HalfStorage, bf16 BFloat16Storage, f64 DoubleStorage, i64 LongStorage, i32 IntStorage, i16
// ShortStorage, i8 CharStorage, u8 ByteStorage, bool BoolStorage; other dtypes are an error naming
// the tensor.
//
// The file is streamed to PATH.tmp, which is renamed to PATH at the end: tensor bytes are never
// copied in memory, and a failed write leaves neither PATH.tmp nor a partial PATH.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "io/tensor_writer.h"

namespace herd {

Status WritePth(const std::string& path, const std::vector<TensorToWrite>& tensors);

// For tests: sizes and offsets >= zip64_limit use ZIP64 fields (0 = ZIP64 everywhere), so the
// ZIP64 paths can be exercised without a 4 GiB file.
struct PthWriteOptions {
  uint64_t zip64_limit = 0xFFFFFFFF;
};
Status WritePth(const std::string& path, const std::vector<TensorToWrite>& tensors,
                const PthWriteOptions& options);

// The archive folder torch.save uses for `path`: its file name up to the first '.'.
std::string PthArchiveName(const std::string& path);

}  // namespace herd
