// A restricted, data-only unpickler for the `data.pkl` of a torch.save archive holding a
// state_dict. It never calls anything: the few globals a state_dict names are recognised by name
// and interpreted here, and every other global or code-running opcode is an error. torch writes
// protocol 2:
//   GLOBAL collections.OrderedDict, EMPTY_TUPLE, REDUCE            -> the dict (or EMPTY_DICT)
//   MARK { BINUNICODE name,                                         -> SETITEMS
//          GLOBAL torch._utils._rebuild_tensor_v2,
//          MARK ( MARK 'storage' GLOBAL torch.BFloat16Storage key 'cpu' numel TUPLE BINPERSID,
//                 storage_offset, size tuple, stride tuple, requires_grad bool,
//                 OrderedDict() backward hooks, [metadata dict] ) TUPLE, REDUCE }
//   [state dict ('_metadata': ...) BUILD]                           (module.state_dict())
//   STOP
// with BINPUT/BINGET memo references in between. Accepted opcodes: PROTO, FRAME, STOP, MARK,
// EMPTY_DICT/TUPLE/LIST, TUPLE, TUPLE1-3, (SHORT_)BINUNICODE(8), BININT(1,2), LONG1, BINFLOAT,
// NONE, NEWTRUE, NEWFALSE, GLOBAL, STACK_GLOBAL, REDUCE, BINPERSID, BUILD (on an OrderedDict only),
// SETITEM(S), APPEND(S), BINPUT, LONG_BINPUT, MEMOIZE, BINGET, LONG_BINGET. Accepted globals:
// collections.OrderedDict, torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter and
// torch.{Float,Half,BFloat16,Double,Long,Int,Short,Char,Byte,Bool}Storage.
// Stack, memo and object counts are bounded; nothing recurses, so nesting depth cannot exhaust the
// C++ stack.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/dtype.h"
#include "base/status.h"

namespace herd::pickle {

// A storage named by the persistent id ('storage', torch.<Type>Storage, key, location, numel); its
// bytes are the archive entry `<archive>/data/<key>`.
struct Storage {
  DType dtype = DType::kF32;
  std::string key;
  uint64_t numel = 0;  // elements
};

// The arguments of one torch._utils._rebuild_tensor_v2 call (not yet checked against the storage).
struct Tensor {
  size_t storage = 0;          // index into StateDict::storages
  int64_t storage_offset = 0;  // elements
  std::vector<int64_t> shape;
  std::vector<int64_t> stride;  // elements
};

struct StateDict {
  std::vector<Storage> storages;                        // unique keys
  std::vector<std::pair<std::string, Tensor>> tensors;  // pickle order
};

// Unpickles a state_dict. `where` prefixes error messages ("consolidated.00.pth: data.pkl"), which
// then give the byte offset of the offending opcode.
Result<StateDict> LoadStateDict(std::string_view pickle, std::string_view where);

}  // namespace herd::pickle
