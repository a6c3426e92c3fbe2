/* math_f32.h: fast float32 exp, tanh and sigmoid, and tanh over an array.
 *
 * Holds nn_exp_f32, nn_tanh_f32, nn_sigmoid_f32 and nn_tanh_array_f32. Branch-free
 * (selects, not jumps), so the loops that call them vectorize. Accuracy: a few float32
 * ulp (tests/test_fastmath.py holds them to it). The float32 activations that need
 * double precision (elu, softplus) call the float64 functions of math_f64.h.
 */
#ifndef NNCORE_CSRC_MATH_F32_H
#define NNCORE_CSRC_MATH_F32_H

#include "config.h"
#include "vec.h"

/* The steps of the float32 exp and tanh, as macros over any float type (float or a
 * vector of floats), so the scalar functions and nn_tanh_array_f32 compute the same
 * operations in the same order from one source. */
/* x = n ln 2 + r: t holds round(x log2 e) in its low bits (the 1.5 * 2^23 trick), n is
 * that integer as a float, r the remainder, with ln 2 split into a part with few
 * significant bits (so that n * hi is exact) and the rest. */
#define NN_EXP_REDUCE_F32(x, t, n, r)                                                  \
    t = (x) * 1.44269504088896341f + 12582912.0f;                                      \
    n = t - 12582912.0f;                                                               \
    r = (x) - n * 0.693359375f; /* 355/512 */                                          \
    r = r - n * -2.12194440054690583e-4f
/* p = e^r by its Taylor polynomial to degree 7, for |r| <= ln2 / 2 (truncation error
 * < 1e-8 relative); p starts as the constant 1/7!. */
#define NN_EXP_POLY_F32(p, r)                                                          \
    p = p * (r) + 1.0f / 720;                                                          \
    p = p * (r) + 1.0f / 120;                                                          \
    p = p * (r) + 1.0f / 24;                                                           \
    p = p * (r) + 1.0f / 6;                                                            \
    p = p * (r) + 0.5f;                                                                \
    p = p * (r) + 1.0f;                                                                \
    p = p * (r) + 1.0f
/* small = tanh(a) for a = |x| < 0.4 by its odd Taylor polynomial through x^13 (x2 =
 * x * x); p starts as the constant 21844/6081075. */
#define NN_TANH_SMALL_F32(small, a, x2, p)                                             \
    p = p * (x2) - 1382.0f / 155925;                                                   \
    p = p * (x2) + 62.0f / 2835;                                                       \
    p = p * (x2) - 17.0f / 315;                                                        \
    p = p * (x2) + 2.0f / 15;                                                          \
    p = p * (x2) - 1.0f / 3;                                                           \
    small = (a) + (a) * (x2) * p

/* e^x = 2^n e^r (NN_EXP_REDUCE_F32, NN_EXP_POLY_F32); 2^n built from n's bits. */
static inline float nn_exp_f32(float x)
{
    x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    float t, n, r, p = 1.0f / 5040;
    NN_EXP_REDUCE_F32(x, t, n, r);
    NN_EXP_POLY_F32(p, r);
    int32_t ti;
    memcpy(&ti, &t, 4);
    int32_t bits = (ti - 0x4B400000 + 127) << 23; /* 2^n as a float */
    float scale;
    memcpy(&scale, &bits, 4);
    return p * scale;
}

/* tanh: an odd Taylor polynomial (through x^13) for |x| < 0.4, where the exp form
 * would cancel; (e - 1) / (e + 1) with e = exp(2|x|) above; the sign restored. */
static inline float nn_tanh_f32(float x)
{
    float a = fabsf(x);
    float x2 = x * x;
    float p = 21844.0f / 6081075, small;
    NN_TANH_SMALL_F32(small, a, x2, p);
    float e = nn_exp_f32(2.0f * (a < 9.0f ? a : 9.0f));
    float big = (e - 1.0f) / (e + 1.0f);
    float r = a >= 0.4f ? big : small;    /* (a NaN takes ``small``: stays NaN) */
    return copysignf(r, x);   /* (so tanh(-0) is -0) */
}

/* 1 / (1 + e^-x); for x << 0 the clamp in nn_exp_f32 keeps this finite. */
static inline float nn_sigmoid_f32(float x)
{
    return 1.0f / (1.0f + nn_exp_f32(-x));
}

/* a[i] = nn_tanh_f32(z[i]) for i < n, whole vectors at a time: the same operations in
 * the same order (so the same results), with |x|, the sign, the clamp and the
 * select as bit operations and a min instruction: compilers turn the scalar
 * function's selects into compares and blends or, for AVX2, leave the loop
 * unvectorized. */
#if defined(__GNUC__) && (defined(__AVX512F__) || defined(__AVX__) || defined(__SSE2__))
#include <immintrin.h>
#if NN_VBYTES == 64
#define NN_VMIN_F32(a, b) ((nn_v_f32)_mm512_min_ps((__m512)(a), (__m512)(b)))
#elif NN_VBYTES == 32
#define NN_VMIN_F32(a, b) ((nn_v_f32)_mm256_min_ps((__m256)(a), (__m256)(b)))
#else
#define NN_VMIN_F32(a, b) ((nn_v_f32)_mm_min_ps((__m128)(a), (__m128)(b)))
#endif
static inline void nn_tanh_array_f32(ptrdiff_t n, const float *z, float *a)
{
    const ptrdiff_t V = nn_lanes_f32;
    ptrdiff_t i = 0;
    for (; i + V <= n; i += V) {
        nn_v_f32 x = *(const nn_vu_f32 *)(z + i);
        nn_vi_f32 sign = (nn_vi_f32)x & (int32_t)0x80000000;
        nn_v_f32 ax = (nn_v_f32)((nn_vi_f32)x & 0x7fffffff);
        nn_v_f32 x2 = x * x;
        nn_v_f32 p = (nn_v_f32){0} + 21844.0f / 6081075, small;
        NN_TANH_SMALL_F32(small, ax, x2, p);
        /* nn_exp_f32(y) for y = 2 min(|x|, 9) in [0, 18], where its clamp does nothing
           (min(9, NaN) is NaN, and a NaN takes ``small`` below). */
        nn_v_f32 y = 2.0f * NN_VMIN_F32((nn_v_f32){0} + 9.0f, ax);
        nn_v_f32 t, k, r, e = (nn_v_f32){0} + 1.0f / 5040;
        NN_EXP_REDUCE_F32(y, t, k, r);
        NN_EXP_POLY_F32(e, r);
        e = e * (nn_v_f32)(((nn_vi_f32)t - 0x4B400000 + 127) << 23);
        nn_v_f32 big = (e - 1.0f) / (e + 1.0f);
        nn_vi_f32 use_big = ax >= 0.4f;
        nn_vi_f32 mag = NN_SELECT_BITS(nn_vi_f32, use_big, big, small);
        *(nn_vu_f32 *)(a + i) = (nn_v_f32)(mag | sign);
    }
    for (; i < n; i++) a[i] = nn_tanh_f32(z[i]);
}
#else
static inline void nn_tanh_array_f32(ptrdiff_t n, const float *z, float *a)
{
    for (ptrdiff_t i = 0; i < n; i++) a[i] = nn_tanh_f32(z[i]);
}
#endif

#endif /* NNCORE_CSRC_MATH_F32_H */
