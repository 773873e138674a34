// kernels/ggml_numerics.h. Every float operation is written out: this file is compiled with
// -ffp-contract=off (no multiply-add the source does not ask for), and std::fma where ggml uses a
// fused multiply-add (an instruction: the file is built for AVX2 + FMA + F16C). Lane loops are
// ggml's SIMD lanes, one element each; the block dot products use the AVX2 intrinsics ggml's
// kernels use (maddubs / madd lane sums, one FMA per block), whose integer parts are exact.
#include "kernels/ggml_numerics.h"

#include <immintrin.h>
#include <math.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <vector>

#include "base/check.h"

namespace herd::kernels::ggml {

namespace {

constexpr int kBlock = 32;

uint32_t Bits(float f) { return std::bit_cast<uint32_t>(f); }
float FromBits(uint32_t u) { return std::bit_cast<float>(u); }
// F16C conversions (round to nearest even), as ggml's GGML_CPU_FP16_TO_FP32 / FP32_TO_FP16.
float F16(uint16_t h) { return _cvtsh_ss(h); }
float RoundF16(float f) { return _cvtsh_ss(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT)); }

// hsum_float_8 / llamafile hsum.
float Hsum8(const float* a) {
  float r[4];
  for (int i = 0; i < 4; ++i) r[i] = a[i + 4] + a[i];
  const float s0 = r[0] + r[2], s1 = r[1] + r[3];
  return s0 + s1;
}

// GGML_F16_VEC_REDUCE of 4 accumulators of 8 lanes (AVX): 0 += 2, 1 += 3; 0 += 1; then the two
// 128-bit halves added and two horizontal adds.
float Reduce4x8(float acc[4][8]) {
  for (int l = 0; l < 8; ++l) acc[0][l] = acc[0][l] + acc[2][l];
  for (int l = 0; l < 8; ++l) acc[1][l] = acc[1][l] + acc[3][l];
  for (int l = 0; l < 8; ++l) acc[0][l] = acc[0][l] + acc[1][l];
  float t0[4];
  for (int i = 0; i < 4; ++i) t0[i] = acc[0][i] + acc[0][i + 4];
  const float h0 = t0[0] + t0[1], h1 = t0[2] + t0[3];
  return h0 + h1;
}

// One activation row quantised to 8-bit blocks (ggml's AVX2 quantize_row_q8_0 / q8_1).
struct QRow {
  std::vector<float> d, s;  // per block: f16(d) and f16(d * sum q) as floats
  std::vector<int8_t> q;
};

void Quantize(const float* x, int64_t n, QRow* out) {
  const int64_t blocks = n / kBlock;
  out->d.resize(blocks);
  out->s.resize(blocks);
  out->q.resize(n);
  for (int64_t b = 0; b < blocks; ++b) {
    const float* v = x + b * kBlock;
    float amax = 0.0f;
    for (int i = 0; i < kBlock; ++i) amax = std::max(amax, std::fabs(v[i]));
    const float d = amax / 127.0f;
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    int sum = 0;
    for (int i = 0; i < kBlock; ++i) {
      const int q = static_cast<int>(std::nearbyint(v[i] * id));  // ties to even
      out->q[b * kBlock + i] = static_cast<int8_t>(q);
      sum += q;
    }
    out->d[b] = RoundF16(d);
    out->s[b] = RoundF16(d * static_cast<float>(sum));
  }
}

// The 8 lane sums of a 32-byte block product: lane k = sum of elements 4k .. 4k + 3 of u * s (u
// unsigned, s signed bytes; no int16 saturation at these magnitudes), as floats.
__m256 LaneSums(__m256i u, __m256i s) {
  const __m256i pairs = _mm256_maddubs_epi16(u, s);
  return _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
}
float Hsum8(__m256 v) {
  alignas(32) float a[8];
  _mm256_store_ps(a, v);
  return Hsum8(a);
}

// ggml_vec_dot_q4_1_q8_1 (AVX2).
float DotQ4_1(const uint8_t* row, const QRow& a, int64_t blocks) {
  __m256 acc = _mm256_setzero_ps();
  float summs = 0.0f;
  for (int64_t b = 0; b < blocks; ++b) {
    const uint8_t* blk = row + b * 20;
    uint16_t dh, mh;
    std::memcpy(&dh, blk, 2);
    std::memcpy(&mh, blk + 2, 2);
    summs = summs + F16(mh) * a.s[b];
    const float d0d1 = F16(dh) * a.d[b];
    // Elements 0..15 are the low nibbles of the 16 bytes, 16..31 the high ones.
    const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 4));
    const __m256i w = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(packed, 4), packed),
                                       _mm256_set1_epi8(0x0f));
    const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(&a.q[b * kBlock]));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(d0d1), LaneSums(w, q), acc);
  }
  return Hsum8(acc) + summs;
}

// ggml_vec_dot_q8_0_q8_0 (AVX2) and llamafile's q8_0 GEMM: |w| times sign(w) q.
float DotQ8_0(const uint8_t* row, const QRow& a, int64_t blocks) {
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < blocks; ++b) {
    const uint8_t* blk = row + b * 34;
    uint16_t dh;
    std::memcpy(&dh, blk, 2);
    const float d = F16(dh) * a.d[b];
    const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2));
    const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(&a.q[b * kBlock]));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(d),
                          LaneSums(_mm256_sign_epi8(w, w), _mm256_sign_epi8(q, w)), acc);
  }
  return Hsum8(acc);
}

// Dot products of f16 vectors of length n (a multiple of 32; zero-padded by the caller).
// llamafile's f16 GEMM: one 8-lane accumulator.
float DotF16Gemm(const float* a, const float* b, int64_t n) {
  float acc[8] = {};
  for (int64_t i = 0; i < n; i += 8)
    for (int l = 0; l < 8; ++l) acc[l] = std::fma(a[i + l], b[i + l], acc[l]);
  return Hsum8(acc);
}
// ggml_vec_dot_f16: 4 accumulators of 8 lanes over steps of 32.
float DotF16Vec(const float* a, const float* b, int64_t n) {
  float acc[4][8] = {};
  for (int64_t i = 0; i < n; i += 32)
    for (int j = 0; j < 4; ++j)
      for (int l = 0; l < 8; ++l)
        acc[j][l] = std::fma(a[i + 8 * j + l], b[i + 8 * j + l], acc[j][l]);
  return Reduce4x8(acc);
}

}  // namespace

void RmsNorm(const float* x, const float* w, int64_t n, float eps, float* out) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i] * x[i]);
  const float mean = static_cast<float>(sum / static_cast<double>(n));
  const float scale = 1.0f / std::sqrt(mean + eps);
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] * scale * w[i];
}

void RopeTable(int64_t pos, int n_dims, float freq_base, float* cos, float* sin) {
  // powf, cosf, sinf: C's float functions (std::pow(float, float) computes in double).
  const float theta_scale = ::powf(freq_base, -2.0f / static_cast<float>(n_dims));
  float theta = static_cast<float>(pos);
  for (int i = 0; i < n_dims / 2; ++i) {
    cos[i] = ::cosf(theta);
    sin[i] = ::sinf(theta);
    theta *= theta_scale;
  }
}

void Rope(float* x, int n_heads, int head_dim, const float* cos, const float* sin) {
  for (int h = 0; h < n_heads; ++h) {
    float* v = x + static_cast<int64_t>(h) * head_dim;
    for (int i = 0; i < head_dim / 2; ++i) {
      const float x0 = v[2 * i], x1 = v[2 * i + 1];
      v[2 * i] = std::fma(x0, cos[i], -(x1 * sin[i]));
      v[2 * i + 1] = std::fma(x0, sin[i], x1 * cos[i]);
    }
  }
}

void MatMul(const MatView& w, const float* x, int64_t n, float* out, ThreadPool* pool) {
  CHECK(Supports(w.dtype) && w.cols % kBlock == 0);
  const int64_t blocks = w.cols / kBlock;
  std::vector<QRow> acts(n);
  for (int64_t t = 0; t < n; ++t) Quantize(x + t * w.cols, w.cols, &acts[t]);
  const bool q4_1 = w.dtype == DType::kQ4_1;
  constexpr int64_t kRowsPerItem = 64;
  const int64_t items = (w.rows + kRowsPerItem - 1) / kRowsPerItem;
  ParallelFor(pool, static_cast<size_t>(items), [&](size_t item, int) {
    const int64_t r0 = static_cast<int64_t>(item) * kRowsPerItem;
    const int64_t r1 = std::min(w.rows, r0 + kRowsPerItem);
    for (int64_t r = r0; r < r1; ++r) {
      const uint8_t* row = w.row(r);
      for (int64_t t = 0; t < n; ++t) {
        out[t * w.rows + r] = q4_1 ? DotQ4_1(row, acts[t], blocks) : DotQ8_0(row, acts[t], blocks);
      }
    }
  });
}

float Exp(float x) {
  const float r = 0x1.8p23f;
  const float z = std::fma(x, 0x1.715476p+0f, r);
  const float n = z - r;
  const float b = std::fma(-n, 0x1.7f7d1cp-20f, std::fma(-n, 0x1.62e4p-1f, x));
  const uint32_t e = Bits(z) << 23;
  const float k = FromBits(e + Bits(1.0f));
  const float u = b * b;
  const float j = std::fma(std::fma(std::fma(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u,
                                    std::fma(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)),
                           u, 0x1.ffffecp-1f * b);
  if (!(std::fabs(n) > 126.0f)) return std::fma(k, j, k);
  const uint32_t g = n <= 0.0f ? 0x82000000u : 0u;
  const float s1 = FromBits(g + 0x7f000000u);
  const float s2 = FromBits(e - g);
  if (std::fabs(n) > 192.0f) return s1 * s1;
  return std::fma(s2, j, s2) * s1;
}

void SwiGLU(float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float x = gate[i];
    gate[i] = x / (1.0f + Exp(0.0f - x)) * up[i];
  }
}

void Attention(const float* q, const KVRows& kv, int64_t n_tokens, int64_t start_pos,
               const AttentionShape& s, float* out, ThreadPool* pool) {
  CHECK(kv.dtype == DType::kF16 && s.n_heads % s.n_kv_heads == 0 && s.head_dim % 32 == 0);
  const bool gemm = n_tokens >= 2;  // llamafile's GEMM runs for prompt batches only
  const int group = s.n_heads / s.n_kv_heads;
  const int hd = s.head_dim;
  const int64_t q_dim = int64_t{s.n_heads} * hd;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const auto* kc = static_cast<const uint16_t*>(kv.k);
  const auto* vc = static_cast<const uint16_t*>(kv.v);
  auto dot = gemm ? DotF16Gemm : DotF16Vec;
  ParallelFor(pool, static_cast<size_t>(n_tokens * s.n_heads), [&](size_t item, int) {
    const int64_t t = static_cast<int64_t>(item) / s.n_heads;
    const int h = static_cast<int>(item % s.n_heads), g = h / group;
    const int64_t pos = start_pos + t;
    const int64_t n_kv = (pos + 1 + 31) / 32 * 32;  // zero-padded: the keys ggml masks add nothing
    std::vector<float> qh(hd), kj(hd), p(n_kv, 0.0f), vd(n_kv, 0.0f);
    for (int d = 0; d < hd; ++d) qh[d] = RoundF16(q[t * q_dim + int64_t{h} * hd + d]);
    float max = -INFINITY;
    for (int64_t j = 0; j <= pos; ++j) {
      const uint16_t* k = kc + kv.HeadOffset(g, hd);
      for (int d = 0; d < hd; ++d)
        kj[d] = F16(kv.k_blocked ? k[KVRows::KeyOffset(j, d, hd)] : k[j * kv.stride + d]);
      p[j] = dot(kj.data(), qh.data(), hd) * scale;
      max = std::max(max, p[j]);
    }
    double sum = 0.0;
    for (int64_t j0 = 0; j0 < n_kv; j0 += 8) {
      float e[8];
      for (int l = 0; l < 8; ++l) e[l] = j0 + l <= pos ? Exp(p[j0 + l] - max) : 0.0f;
      for (int l = 0; l < 8; ++l) p[j0 + l] = e[l];
      sum += static_cast<double>(Hsum8(e));
    }
    const float inv = static_cast<float>(1.0 / sum);
    for (int64_t j = 0; j <= pos; ++j) p[j] = RoundF16(p[j] * inv);
    float* o = out + t * q_dim + int64_t{h} * hd;
    for (int d = 0; d < hd; ++d) {
      for (int64_t j = 0; j <= pos; ++j) vd[j] = F16(vc[j * kv.stride + kv.HeadOffset(g, hd) + d]);
      o[d] = dot(vd.data(), p.data(), n_kv);
    }
  });
}

}  // namespace herd::kernels::ggml
