#include "train/dist.h"

#include <climits>
#include <cstdlib>
#include <string>

#ifdef HERD_MPI
#include <mpi.h>
#endif

namespace herd::dist {
namespace {

int g_rank = 0, g_world = 1, g_local = 1;
bool g_joined = false;  // Init called MPI_Init (and Finalize has not run)

// The world size a launcher announces in the environment (0: no launcher).
int LauncherWorldSize() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "PMI_SIZE"}) {
    if (const char* v = std::getenv(name); v && *v) return std::atoi(v);
  }
  if (std::getenv("PMIX_RANK") || std::getenv("PMI_RANK")) return 1;
  return 0;
}

#ifdef HERD_MPI
// MPI counts are int: large buffers go in chunks.
constexpr size_t kChunk = INT_MAX / 2;
#endif

}  // namespace

bool Compiled() {
#ifdef HERD_MPI
  return true;
#else
  return false;
#endif
}

Status Init() {
  if (g_joined) return Status::Ok();
  const int launcher = LauncherWorldSize();
#ifdef HERD_MPI
  if (launcher == 0) return Status::Ok();
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    int provided = 0;
    if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
      return Status::Error("MPI_Init_thread failed");
  }
  g_joined = true;
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_world);
  MPI_Comm local;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, g_rank, MPI_INFO_NULL, &local);
  MPI_Comm_size(local, &g_local);
  MPI_Comm_free(&local);
  return Status::Ok();
#else
  if (launcher > 1)
    return Status::Errorf(
        "launched as one of {} MPI ranks, but this herd was built without MPI: install "
        "libopenmpi-dev (scripts/setup) and rebuild",
        launcher);
  return Status::Ok();
#endif
}

void Finalize() {
#ifdef HERD_MPI
  if (!g_joined) return;
  g_joined = false;
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
  g_rank = 0, g_world = 1, g_local = 1;
#endif
}

void Abort(int code) {
#ifdef HERD_MPI
  if (g_joined && g_world > 1) MPI_Abort(MPI_COMM_WORLD, code);
#endif
  std::exit(code);
}

int Rank() { return g_rank; }
int WorldSize() { return g_world; }
int LocalSize() { return g_local; }

void AllReduceSum(float* data, size_t n) {
#ifdef HERD_MPI
  if (g_world == 1) return;
  for (size_t i = 0; i < n; i += kChunk) {
    const int count = static_cast<int>(n - i < kChunk ? n - i : kChunk);
    MPI_Allreduce(MPI_IN_PLACE, data + i, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
  }
#else
  (void)data, (void)n;
#endif
}

void AllReduceSum(double* data, size_t n) {
#ifdef HERD_MPI
  if (g_world == 1) return;
  for (size_t i = 0; i < n; i += kChunk) {
    const int count = static_cast<int>(n - i < kChunk ? n - i : kChunk);
    MPI_Allreduce(MPI_IN_PLACE, data + i, count, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  }
#else
  (void)data, (void)n;
#endif
}

void Broadcast(void* data, size_t bytes, int root) {
#ifdef HERD_MPI
  if (g_world == 1) return;
  char* p = static_cast<char*>(data);
  for (size_t i = 0; i < bytes; i += kChunk) {
    const int count = static_cast<int>(bytes - i < kChunk ? bytes - i : kChunk);
    MPI_Bcast(p + i, count, MPI_BYTE, root, MPI_COMM_WORLD);
  }
#else
  (void)data, (void)bytes, (void)root;
#endif
}

void Barrier() {
#ifdef HERD_MPI
  if (g_world > 1) MPI_Barrier(MPI_COMM_WORLD);
#endif
}

}  // namespace herd::dist
