#include "kernels/kquant.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "base/check.h"
#include "kernels/convert.h"

namespace herd::kernels {
namespace {

constexpr int kQ4KBytes = 144, kQ5KBytes = 176, kQ6KBytes = 210;

uint16_t LoadU16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
void StoreU16(uint8_t* p, uint16_t v) { p[0] = v & 0xff, p[1] = v >> 8; }

// Round to nearest, ties to even (the float addition of 1.5 * 2^23 leaves an integer in the low
// mantissa bits), for |v| < 2^22. So that every float has a defined level (the callers clamp it
// to their range): finite v beyond that gives +-2^22, and NaN or +-Inf 0. Non-finite v come from
// an inverse scale that overflowed (a sub-block whose range is a float32 subnormal); level 0
// there is also what ggml's rounding writes, so such blocks stay byte-identical to ggml's.
int NearestInt(float v) {
  if (!std::isfinite(v)) return 0;
  if (!(std::fabs(v) < 0x1p22f)) return v > 0 ? (1 << 22) : -(1 << 22);
  return static_cast<int>((v + 0x1.8p23f) - 0x1.8p23f);
}
int NearestIn(float v, int lo, int hi) { return std::clamp(NearestInt(v), lo, hi); }

// The f16 of a super-scale, saturating at the largest finite f16 (where ggml would write inf).
uint16_t F16Saturated(float v) {
  if (std::isnan(v)) return 0;
  return F32ToF16(std::clamp(v, -65504.0f, 65504.0f));
}

// A block's elements with NaN and +-Inf replaced by 0.
void Sanitise(const float* src, float* x) {
  for (int i = 0; i < kQK_K; ++i) x[i] = std::isfinite(src[i]) ? src[i] : 0.0f;
}

// ---- q4_K / q5_K: weighted affine fit of each 32-element sub-block
// -------------------------------

constexpr int kAffineSub = 32;

struct AffineFit {
  float scale;   // x ~ scale * q - offset
  float offset;  // >= 0: the levels always reach down to zero or below
};

// Weighted squared error of x ~ scale * q + origin.
float AffineError(const float* x, const float* w, const uint8_t* q, float scale, float origin) {
  float err = 0;
  for (int i = 0; i < kAffineSub; ++i) {
    const float diff = scale * q[i] + origin - x[i];
    err += w[i] * (diff * diff);
  }
  return err;
}

// Fits the sub-block x (weights w) to levels q in [0, nmax]. Starts from the plain min / max map,
// then tries inverse scales (nmax + rmin + 0.1 k) / (max - origin) for k = 0..nstep; for each, the
// levels it assigns are re-solved by weighted least squares for scale and origin (origin capped at
// 0, refitting the scale alone), and the assignment of least weighted squared error is kept. The
// origin found so far is the one later candidates are measured from.
AffineFit FitAffine(const float* x, const float* w, int nmax, float rmin, int nstep, uint8_t* q) {
  float lo = x[0], hi = x[0], sum_w = 0, sum_x = 0;
  for (int i = 0; i < kAffineSub; ++i) {
    lo = std::min(lo, x[i]), hi = std::max(hi, x[i]);
    sum_w += w[i], sum_x += w[i] * x[i];
  }
  lo = std::min(lo, 0.0f);
  if (hi == lo) {  // all zero (an all-positive or mixed block has hi > lo)
    std::fill_n(q, kAffineSub, 0);
    return {0, -lo};
  }
  float inv = nmax / (hi - lo), scale = 1 / inv;
  for (int i = 0; i < kAffineSub; ++i) q[i] = NearestIn(inv * (x[i] - lo), 0, nmax);
  float best = AffineError(x, w, q, scale, lo);
  uint8_t trial[kAffineSub];
  for (int k = 0; k <= nstep; ++k) {
    inv = (rmin + 0.1f * k + nmax) / (hi - lo);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < kAffineSub; ++i) {
      const int l = NearestIn(inv * (x[i] - lo), 0, nmax);
      trial[i] = static_cast<uint8_t>(l);
      sum_l += w[i] * l, sum_l2 += w[i] * l * l, sum_xl += w[i] * l * x[i];
    }
    const float det = sum_w * sum_l2 - sum_l * sum_l;
    if (!(det > 0)) continue;
    float s = (sum_w * sum_xl - sum_x * sum_l) / det;
    float origin = (sum_l2 * sum_x - sum_l * sum_xl) / det;
    if (origin > 0) origin = 0, s = sum_xl / sum_l2;
    const float err = AffineError(x, w, trial, s, origin);
    if (err < best) {
      std::copy_n(trial, kAffineSub, q);
      best = err, scale = s, lo = origin;
    }
  }
  return {scale, -lo};
}

// Quantises one q4_K / q5_K block: writes d, dmin and the 12 scale bytes at head (16 bytes) and
// the 256 levels (0..nmax) to q.
void QuantizeAffineBlock(const float* src, int nmax, float rmin, int nstep, uint8_t* head,
                         uint8_t* q) {
  float x[kQK_K], w[kAffineSub];
  Sanitise(src, x);
  float scale[8], offset[8], max_scale = 0, max_offset = 0;
  for (int s = 0; s < 8; ++s) {
    const float* xs = x + kAffineSub * s;
    float sum_x2 = 0;
    for (int i = 0; i < kAffineSub; ++i) sum_x2 += xs[i] * xs[i];
    const float rms = std::sqrt(sum_x2 / kAffineSub);
    for (int i = 0; i < kAffineSub; ++i) w[i] = rms + std::fabs(xs[i]);
    const AffineFit f = FitAffine(xs, w, nmax, rmin, nstep, q + kAffineSub * s);
    scale[s] = f.scale, offset[s] = f.offset;
    max_scale = std::max(max_scale, f.scale), max_offset = std::max(max_offset, f.offset);
  }
  // 6-bit sub-block scales and mins against the largest of each.
  const float inv_scale = max_scale > 0 ? 63 / max_scale : 0;
  const float inv_offset = max_offset > 0 ? 63 / max_offset : 0;
  uint8_t sc[8], mn[8];
  for (int s = 0; s < 8; ++s) {
    sc[s] = static_cast<uint8_t>(NearestIn(inv_scale * scale[s], 0, 63));
    mn[s] = static_cast<uint8_t>(NearestIn(inv_offset * offset[s], 0, 63));
  }
  StoreU16(head, F16Saturated(max_scale / 63));
  StoreU16(head + 2, F16Saturated(max_offset / 63));
  uint8_t* scales = head + 4;
  for (int s = 0; s < 4; ++s) {
    scales[s] = static_cast<uint8_t>(sc[s] | (sc[s + 4] >> 4) << 6);
    scales[s + 4] = static_cast<uint8_t>(mn[s] | (mn[s + 4] >> 4) << 6);
    scales[s + 8] = static_cast<uint8_t>((sc[s + 4] & 15) | (mn[s + 4] & 15) << 4);
  }
  // The levels against the scales as stored. A sub-block whose scale is 0 keeps its fitted levels
  // (they decode to the min term whatever they are).
  const float d = F16ToF32(LoadU16(head)), dmin = F16ToF32(LoadU16(head + 2));
  for (int s = 0; s < 8; ++s) {
    const float ds = d * sc[s], ms = dmin * mn[s];
    if (ds == 0) continue;
    for (int i = kAffineSub * s; i < kAffineSub * (s + 1); ++i)
      q[i] = static_cast<uint8_t>(NearestIn((x[i] + ms) / ds, 0, nmax));
  }
}

// The 6-bit scale and min of sub-block s from q4_K / q5_K's 12 scale bytes.
void ScaleMin(const uint8_t* scales, int s, int* sc, int* mn) {
  if (s < 4) {
    *sc = scales[s] & 63, *mn = scales[s + 4] & 63;
  } else {
    *sc = (scales[s + 4] & 15) | (scales[s - 4] >> 6) << 4;
    *mn = (scales[s + 4] >> 4) | (scales[s] >> 6) << 4;
  }
}

// ---- q6_K: symmetric fit of each 16-element sub-block
// --------------------------------------------

constexpr int kQ6Sub = 16, kQ6Half = 32;  // levels -32..31

// Fits the sub-block x to levels q in [-32, 31] (x ~ scale * q), weights x^2. The element of
// largest magnitude sets the first inverse scale -32 / max (it maps to -32); 18 more around it,
// -(32 + 0.1 k) / max for k = -9..9, are tried, keeping the levels whose least-squares scale
// explains the most weighted energy (sum_lx^2 / sum_l2). Returns the scale.
float FitSymmetric(const float* x, int8_t* q) {
  float amax = 0, max = 0;
  for (int i = 0; i < kQ6Sub; ++i) {
    if (std::fabs(x[i]) > amax) amax = std::fabs(x[i]), max = x[i];
  }
  if (amax < 1e-15f) {  // scale 0; stored as level -32 (q = 0), as ggml writes it
    std::fill_n(q, kQ6Sub, -kQ6Half);
    return 0;
  }
  auto sums = [&](float inv, float* sum_lx, float* sum_l2, int8_t* levels) {
    *sum_lx = 0, *sum_l2 = 0;
    for (int i = 0; i < kQ6Sub; ++i) {
      const int l = NearestIn(inv * x[i], -kQ6Half, kQ6Half - 1);
      if (levels) levels[i] = static_cast<int8_t>(l);
      const float w = x[i] * x[i];
      *sum_lx += w * x[i] * l, *sum_l2 += w * l * l;
    }
  };
  float sum_lx, sum_l2;
  sums(-kQ6Half / max, &sum_lx, &sum_l2, q);
  float scale = sum_l2 != 0 ? sum_lx / sum_l2 : 0;
  float best = scale * sum_lx;
  for (int k = -9; k <= 9; ++k) {
    if (k == 0) continue;
    const float inv = -(kQ6Half + 0.1f * k) / max;
    sums(inv, &sum_lx, &sum_l2, nullptr);
    if (sum_l2 > 0 && sum_lx * sum_lx > best * sum_l2) {
      sums(inv, &sum_lx, &sum_l2, q);
      scale = sum_lx / sum_l2, best = scale * sum_lx;
    }
  }
  return scale;
}

void QuantizeQ6Block(const float* src, uint8_t* dst) {
  float x[kQK_K], scale[16], max_scale = 0, max_abs = 0;
  int8_t lv[kQK_K];
  Sanitise(src, x);
  for (int s = 0; s < 16; ++s) {
    scale[s] = FitSymmetric(x + kQ6Sub * s, lv + kQ6Sub * s);
    if (std::fabs(scale[s]) > max_abs) max_abs = std::fabs(scale[s]), max_scale = scale[s];
  }
  if (max_abs < 1e-15f) {
    std::memset(dst, 0, kQ6KBytes);
    return;
  }
  uint8_t *ql = dst, *qh = dst + 128;
  auto* scales = reinterpret_cast<int8_t*>(dst + 192);
  // int8 sub-block scales; the largest in magnitude becomes -128.
  const float inv = -128 / max_scale;
  StoreU16(dst + 208, F16Saturated(1 / inv));
  const float d = F16ToF32(LoadU16(dst + 208));
  for (int s = 0; s < 16; ++s) {
    scales[s] = static_cast<int8_t>(NearestIn(inv * scale[s], -128, 127));
    const float ds = d * scales[s];
    if (ds == 0) continue;  // keeps the fitted levels, which decode to 0 anyway
    for (int i = kQ6Sub * s; i < kQ6Sub * (s + 1); ++i)
      lv[i] = static_cast<int8_t>(NearestIn(x[i] / ds, -kQ6Half, kQ6Half - 1));
  }
  for (int h = 0; h < 2; ++h) {
    for (int i = 0; i < 32; ++i) {
      int q[4];
      for (int k = 0; k < 4; ++k) q[k] = lv[128 * h + 32 * k + i] + kQ6Half;
      ql[64 * h + i] = static_cast<uint8_t>((q[0] & 15) | (q[2] & 15) << 4);
      ql[64 * h + 32 + i] = static_cast<uint8_t>((q[1] & 15) | (q[3] & 15) << 4);
      qh[32 * h + i] =
          static_cast<uint8_t>(q[0] >> 4 | (q[1] >> 4) << 2 | (q[2] >> 4) << 4 | (q[3] >> 4) << 6);
    }
  }
}

}  // namespace

void DequantizeRowQ4_K(const uint8_t* src, int64_t n, float* dst) {
  CHECK(n % kQK_K == 0);
  for (int64_t b = 0; b < n / kQK_K; ++b, src += kQ4KBytes) {
    const float d = F16ToF32(LoadU16(src)), dmin = F16ToF32(LoadU16(src + 2));
    const uint8_t* qs = src + 16;
    for (int s = 0; s < 8; ++s, dst += 32) {
      int sc, mn;
      ScaleMin(src + 4, s, &sc, &mn);
      const float ds = d * sc, ms = dmin * mn;
      const uint8_t* g = qs + 32 * (s / 2);
      const int shift = 4 * (s % 2);
      for (int i = 0; i < 32; ++i) dst[i] = ds * ((g[i] >> shift) & 15) - ms;
    }
  }
}

void DequantizeRowQ5_K(const uint8_t* src, int64_t n, float* dst) {
  CHECK(n % kQK_K == 0);
  for (int64_t b = 0; b < n / kQK_K; ++b, src += kQ5KBytes) {
    const float d = F16ToF32(LoadU16(src)), dmin = F16ToF32(LoadU16(src + 2));
    const uint8_t *qh = src + 16, *qs = src + 48;
    for (int s = 0; s < 8; ++s, dst += 32) {
      int sc, mn;
      ScaleMin(src + 4, s, &sc, &mn);
      const float ds = d * sc, ms = dmin * mn;
      const uint8_t* g = qs + 32 * (s / 2);
      const int shift = 4 * (s % 2);
      for (int i = 0; i < 32; ++i) {
        const int q = ((g[i] >> shift) & 15) | ((qh[i] >> s) & 1) << 4;
        dst[i] = ds * q - ms;
      }
    }
  }
}

void DequantizeRowQ6_K(const uint8_t* src, int64_t n, float* dst) {
  CHECK(n % kQK_K == 0);
  for (int64_t b = 0; b < n / kQK_K; ++b, src += kQ6KBytes) {
    const float d = F16ToF32(LoadU16(src + 208));
    const auto* scales = reinterpret_cast<const int8_t*>(src + 192);
    for (int h = 0; h < 2; ++h) {
      const uint8_t *ql = src + 64 * h, *qh = src + 128 + 32 * h;
      for (int k = 0; k < 4; ++k, dst += 32) {
        const uint8_t* low = ql + 32 * (k & 1);
        const int shift = k < 2 ? 0 : 4;
        for (int i = 0; i < 32; ++i) {
          const int q = (((low[i] >> shift) & 15) | ((qh[i] >> (2 * k)) & 3) << 4) - kQ6Half;
          dst[i] = (d * scales[8 * h + 2 * k + i / 16]) * q;
        }
      }
    }
  }
}

void QuantizeRowQ4_K(const float* src, int64_t n, uint8_t* dst) {
  CHECK(n % kQK_K == 0);
  uint8_t q[kQK_K];
  for (int64_t b = 0; b < n / kQK_K; ++b, src += kQK_K, dst += kQ4KBytes) {
    QuantizeAffineBlock(src, 15, -1.0f, 20, dst, q);
    for (int g = 0; g < 4; ++g) {
      for (int i = 0; i < 32; ++i)
        dst[16 + 32 * g + i] = static_cast<uint8_t>(q[64 * g + i] | q[64 * g + 32 + i] << 4);
    }
  }
}

void QuantizeRowQ5_K(const float* src, int64_t n, uint8_t* dst) {
  CHECK(n % kQK_K == 0);
  uint8_t q[kQK_K];
  for (int64_t b = 0; b < n / kQK_K; ++b, src += kQK_K, dst += kQ5KBytes) {
    QuantizeAffineBlock(src, 31, -0.5f, 15, dst, q);
    uint8_t *qh = dst + 16, *qs = dst + 48;
    std::memset(qh, 0, 32);
    for (int g = 0; g < 4; ++g) {
      for (int i = 0; i < 32; ++i) {
        const int lo = q[64 * g + i], hi = q[64 * g + 32 + i];
        qs[32 * g + i] = static_cast<uint8_t>((lo & 15) | (hi & 15) << 4);
        qh[i] |= static_cast<uint8_t>((lo >> 4) << (2 * g) | (hi >> 4) << (2 * g + 1));
      }
    }
  }
}

void QuantizeRowQ6_K(const float* src, int64_t n, uint8_t* dst) {
  CHECK(n % kQK_K == 0);
  for (int64_t b = 0; b < n / kQK_K; ++b, src += kQK_K, dst += kQ6KBytes) QuantizeQ6Block(src, dst);
}

}  // namespace herd::kernels
