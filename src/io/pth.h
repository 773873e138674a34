// Meta's original checkpoints (`consolidated.NN.pth`): torch.save archives of a state_dict, read
// without executing anything. A torch.save file (torch >= 1.6) is a ZIP (see io/zip.h) whose
// entries all sit under one archive folder, the first path component ("consolidated", "archive",
// ...):
//   <archive>/data.pkl      the pickled state_dict (protocol 2; see io/pickle.h for what is
//   allowed) <archive>/data/<key>    raw little-endian bytes of storage <key>, entries aligned to
//   64 bytes <archive>/byteorder     "little" (absent in older files; anything else is refused)
//   <archive>/version, .format_version, .storage_alignment, .data/serialization_id   (ignored)
// Each tensor is (storage, storage_offset, size, stride). herd requires contiguous row-major
// tensors, and points each entry at `storage bytes + storage_offset * element size` inside the
// mapped file: nothing is copied. Tensors that share a storage at different offsets are fine.
// Entries must be STORED (torch.save never compresses); the legacy pre-1.6 format is refused.
#pragma once

#include <memory>
#include <string>

#include "base/status.h"
#include "io/tensor_index.h"

namespace herd {

// Maps `path` and indexes its tensors; the index keeps the mapping alive.
Result<TensorIndex> LoadPth(const std::string& path);

// Same, over bytes in memory (tests, fuzzing); `name` names the source in error messages.
Result<TensorIndex> ParsePth(std::shared_ptr<const std::string> bytes, const std::string& name);

}  // namespace herd
