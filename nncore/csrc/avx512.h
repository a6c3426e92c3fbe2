/* avx512.h: the AVX-512 helpers of the matrix products and of the feature-major sums.
 *
 * Holds: masked loads and stores of a partial vector (nn_load_masked_*,
 * nn_store_masked_*), a 16 x 16 float transpose in registers (nn_transpose16_f32),
 * sixteen float dot products or row sums at once (nn_dots16_f32, nn_sums16_f32, both
 * ending in nn_lane_sums16_f32). Builds without AVX-512 get do-nothing stand-ins with
 * NN_AVX512_HELPERS 0: every call is behind that constant, so the shared code compiles
 * everywhere and the compiler drops the dead branches.
 */
#ifndef NNCORE_CSRC_AVX512_H
#define NNCORE_CSRC_AVX512_H

#include "config.h"

#if defined(__AVX512F__) && defined(__GNUC__)
#include <immintrin.h>
#define NN_AVX512_HELPERS 1
/* c[0 .. n) (+)= the first n lanes of the vector at x (n < the vector's lanes). */
static inline void nn_store_masked_f32(float *c, const void *x, ptrdiff_t n, int accumulate)
{
    __mmask16 m = (__mmask16)((1u << n) - 1);
    __m512 v = _mm512_loadu_ps((const float *)x);
    if (accumulate) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, c));
    _mm512_mask_storeu_ps(c, m, v);
}
static inline void nn_store_masked_f64(double *c, const void *x, ptrdiff_t n, int accumulate)
{
    __mmask8 m = (__mmask8)((1u << n) - 1);
    __m512d v = _mm512_loadu_pd((const double *)x);
    if (accumulate) v = _mm512_add_pd(v, _mm512_maskz_loadu_pd(m, c));
    _mm512_mask_storeu_pd(c, m, v);
}
/* dst[0 .. lanes) = src[0 .. n), then zeros (n < the vector's lanes). */
static inline void nn_load_masked_f32(const float *src, ptrdiff_t n, float *dst)
{
    _mm512_storeu_ps(dst, _mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1), src));
}
static inline void nn_load_masked_f64(const double *src, ptrdiff_t n, double *dst)
{
    _mm512_storeu_pd(dst, _mm512_maskz_loadu_pd((__mmask8)((1u << n) - 1), src));
}

/* d[c*ldd + r] = s[r*lds + c] for a 16 x 16 block of floats, in registers: pairs,
 * then quads within each 128-bit lane, then the lanes themselves. 64 shuffles in
 * place of 256 scalar stores, for packing a weight matrix read as W^T. */
static inline void nn_transpose16_f32(const float *s, ptrdiff_t lds, float *d, ptrdiff_t ldd)
{
    __m512 r[16], t[16];
    for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(s + i * lds);
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    /* r[4g + k], 128-bit lane L: column 4L + k of rows 4g .. 4g+3. */
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
        r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
        r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int k = 0; k < 4; k++) {
        __m512 x0 = _mm512_shuffle_f32x4(r[k], r[4 + k], 0x88);
        __m512 x1 = _mm512_shuffle_f32x4(r[k], r[4 + k], 0xDD);
        __m512 y0 = _mm512_shuffle_f32x4(r[8 + k], r[12 + k], 0x88);
        __m512 y1 = _mm512_shuffle_f32x4(r[8 + k], r[12 + k], 0xDD);
        _mm512_storeu_ps(d + (0 + k) * ldd, _mm512_shuffle_f32x4(x0, y0, 0x88));
        _mm512_storeu_ps(d + (8 + k) * ldd, _mm512_shuffle_f32x4(x0, y0, 0xDD));
        _mm512_storeu_ps(d + (4 + k) * ldd, _mm512_shuffle_f32x4(x1, y1, 0x88));
        _mm512_storeu_ps(d + (12 + k) * ldd, _mm512_shuffle_f32x4(x1, y1, 0xDD));
    }
}
/* c[r] (+)= the sum of acc[r]'s lanes, for 16 vectors, in registers: a tree of
 * halving steps, each adding two shuffles of a pair of vectors (256-bit halves, then
 * 128-bit quarters, then pairs and single lanes), 31 shuffles and 15 adds for all 16
 * sums, where each vector alone would need a chain of lane-by-lane adds. */
static inline void nn_lane_sums16_f32(const __m512 *acc, float *c, int accumulate)
{
    __m512 x[8], y[4];
    /* x[i], 128-bit chunks: two partial sums of acc[i], then two of acc[i + 8]. */
    for (int i = 0; i < 8; i++)
        x[i] = _mm512_add_ps(_mm512_shuffle_f32x4(acc[i], acc[i + 8], 0x44),
                             _mm512_shuffle_f32x4(acc[i], acc[i + 8], 0xEE));
    /* y[i], chunks: 4 partial sums each of acc[i], acc[i + 8], acc[i + 4], acc[i + 12]. */
    for (int i = 0; i < 4; i++)
        y[i] = _mm512_add_ps(_mm512_shuffle_f32x4(x[i], x[i + 4], 0x88),
                             _mm512_shuffle_f32x4(x[i], x[i + 4], 0xDD));
    /* Within each chunk: lanes (y0, y1, y0, y1) and (y2, y3, y2, y3), 2 sums each. */
    __m512 z0 = _mm512_add_ps(_mm512_unpacklo_ps(y[0], y[1]), _mm512_unpackhi_ps(y[0], y[1]));
    __m512 z1 = _mm512_add_ps(_mm512_unpacklo_ps(y[2], y[3]), _mm512_unpackhi_ps(y[2], y[3]));
    /* Chunk k of w: the whole sums of its four vectors; chunks hold acc 0-3, 8-11,
       4-7, 12-15, put in order by the last shuffle. */
    __m512 w = _mm512_add_ps(_mm512_shuffle_ps(z0, z1, 0x44), _mm512_shuffle_ps(z0, z1, 0xEE));
    __m512 s = _mm512_shuffle_f32x4(w, w, 0xD8);
    if (accumulate) s = _mm512_add_ps(s, _mm512_loadu_ps(c));
    _mm512_storeu_ps(c, s);
}
/* c[r] (+)= sum_p a[r*lda + p] b[p] for 16 rows r: each row's products summed along
 * the lanes into one vector, then the 16 vectors' lanes summed together
 * (nn_lane_sums16_f32). */
static inline void nn_dots16_f32(ptrdiff_t K, const float *a, ptrdiff_t lda, const float *b,
                               float *c, int accumulate)
{
    __m512 acc[16];
    for (int r = 0; r < 16; r++) acc[r] = _mm512_setzero_ps();
    ptrdiff_t p = 0;
    for (; p + 16 <= K; p += 16) {
        __m512 bv = _mm512_loadu_ps(b + p);
        for (int r = 0; r < 16; r++)
            acc[r] = _mm512_fmadd_ps(_mm512_loadu_ps(a + r * lda + p), bv, acc[r]);
    }
    if (p < K) {
        __mmask16 m = (__mmask16)((1u << (K - p)) - 1);
        __m512 bv = _mm512_maskz_loadu_ps(m, b + p);
        for (int r = 0; r < 16; r++)
            acc[r] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + r * lda + p), bv, acc[r]);
    }
    nn_lane_sums16_f32(acc, c, accumulate);
}
/* c[r] = sum_p a[r*lda + p], p < K, for 16 rows r (nn_dots16_f32 without b). */
static inline void nn_sums16_f32(ptrdiff_t K, const float *a, ptrdiff_t lda, float *c)
{
    __m512 acc[16];
    for (int r = 0; r < 16; r++) acc[r] = _mm512_setzero_ps();
    ptrdiff_t p = 0;
    for (; p + 16 <= K; p += 16)
        for (int r = 0; r < 16; r++)
            acc[r] = _mm512_add_ps(_mm512_loadu_ps(a + r * lda + p), acc[r]);
    if (p < K) {
        __mmask16 m = (__mmask16)((1u << (K - p)) - 1);
        for (int r = 0; r < 16; r++)
            acc[r] = _mm512_add_ps(_mm512_maskz_loadu_ps(m, a + r * lda + p), acc[r]);
    }
    nn_lane_sums16_f32(acc, c, 0);
}
#else
#define NN_AVX512_HELPERS 0
static inline void nn_store_masked_f32(float *c, const void *x, ptrdiff_t n, int accumulate)
{
    (void)c; (void)x; (void)n; (void)accumulate;
}
static inline void nn_store_masked_f64(double *c, const void *x, ptrdiff_t n, int accumulate)
{
    (void)c; (void)x; (void)n; (void)accumulate;
}
static inline void nn_load_masked_f32(const float *src, ptrdiff_t n, float *dst)
{
    (void)src; (void)n; (void)dst;
}
static inline void nn_load_masked_f64(const double *src, ptrdiff_t n, double *dst)
{
    (void)src; (void)n; (void)dst;
}
static inline void nn_transpose16_f32(const float *s, ptrdiff_t lds, float *d, ptrdiff_t ldd)
{
    (void)s; (void)lds; (void)d; (void)ldd;
}
static inline void nn_dots16_f32(ptrdiff_t K, const float *a, ptrdiff_t lda, const float *b,
                               float *c, int accumulate)
{
    (void)K; (void)a; (void)lda; (void)b; (void)c; (void)accumulate;
}
static inline void nn_sums16_f32(ptrdiff_t K, const float *a, ptrdiff_t lda, float *c)
{
    (void)K; (void)a; (void)lda; (void)c;
}
#endif

#endif /* NNCORE_CSRC_AVX512_H */
