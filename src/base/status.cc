#include "base/status.h"

// Header-only today; this unit keeps herd_base a real library that later pieces (timers, buffers)
// join.
namespace herd {}
