// <immintrin.h> for files built with AVX-512 flags. GCC 12's AVX-512 intrinsics initialise their
// "undefined" operands from themselves, which -Wuninitialized reports at every use (GCC bug
// 105593, fixed in GCC 13); this include silences that one report and nothing else.
#pragma once

#pragma GCC diagnostic push
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#pragma GCC diagnostic pop
