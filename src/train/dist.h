// Data-parallel training across processes: a small wrapper over MPI, so nothing else needs
// #ifdefs. Built with MPI (HERD_MPI, when CMake finds it) Init() joins the MPI job of the launcher
// (mpirun sets OMPI_COMM_WORLD_SIZE / PMIX_RANK / PMI_SIZE); started without a launcher it stays a
// world of one and never touches MPI, so a plain `herd train` needs no MPI runtime. Built without
// MPI every call works for a world of one, and Init() refuses a launch by mpirun with more ranks.
//
// Collectives (AllReduceSum, Broadcast, Barrier) must be called by every rank in the same order;
// with a world of one they return at once. Only the calling thread talks to MPI (FUNNELED).
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/status.h"

namespace herd::dist {

// Whether this binary was built with MPI.
bool Compiled();
// Joins the launcher's MPI job when there is one (idempotent). Error: launched by mpirun with
// more than one rank but built without MPI, or MPI failed to start.
Status Init();
// Leaves MPI if Init joined it (idempotent).
void Finalize();
// Ends every rank of the job with `code` (MPI_Abort), or just this process in a world of one.
[[noreturn]] void Abort(int code);

int Rank();       // 0 in a world of one
int WorldSize();  // 1 without a launcher
int LocalSize();  // ranks on this machine (for threads per rank); 1 without a launcher

// In place: every rank ends with the element-wise sum over ranks, bit-identical on every rank.
void AllReduceSum(float* data, size_t n);
void AllReduceSum(double* data, size_t n);
// Root's `bytes` bytes at `data` copied to every rank.
void Broadcast(void* data, size_t bytes, int root = 0);
void Barrier();

// Init() on construction (the status in status()), Finalize() on destruction.
class Session {
 public:
  Session() : status_(Init()) {}
  ~Session() { Finalize(); }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  const Status& status() const { return status_; }

 private:
  Status status_;
};

}  // namespace herd::dist
