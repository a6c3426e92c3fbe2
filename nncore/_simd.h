/* Vectorized C helpers for nncore/_kernels.pyx: fast float32 transcendentals and the
 * matrix-multiply kernel.
 *
 * Both are written with GCC/Clang vector extensions, so one source serves every
 * instruction set: the vector width follows the flags the including module is
 * compiled with (SSE2, AVX2 or AVX-512; see setup.py). Other compilers get plain
 * loops. Nothing here allocates, takes locks or touches Python.
 */
#ifndef NNCORE_SIMD_H
#define NNCORE_SIMD_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <math.h>

#if defined(__AVX512F__)
#define NN_VBYTES 64
#elif defined(__AVX__)
#define NN_VBYTES 32
#else
#define NN_VBYTES 16
#endif

/* Rows of C per register tile: enough independent accumulators to hide the FMA
 * latency, few enough to stay in the vector register file (32 on AVX-512, 16 else). */
#if NN_VBYTES == 64
#define NN_MR 8
#elif NN_VBYTES == 32
#define NN_MR 6
#else
#define NN_MR 4
#endif

/* K is split into blocks of NN_KC so that a packed panel of B (NN_KC x 2 vectors)
 * stays in the L1 cache while the rows of A stream past it. */
#define NN_KC 256
/* Products whose A holds at most this many values, and whose C is at most one vector
 * wide, run row by row without packing (NAME##_direct; AVX-512 builds). */
#define NN_DIRECT_MAX 512
/* The K blocks actually used: K split evenly into as few blocks of at most NN_KC as
 * will do (784 = 4 x 196, not 3 x 256 + 16: a short last block pays a full round of
 * loading and storing C for a few multiply-adds). */
#define NN_KBLOCK(K) ((K) < 1 ? 1 : ((K) + ((K) + NN_KC - 1) / NN_KC - 1) / (((K) + NN_KC - 1) / NN_KC))
/* Products with more multiply-adds than this go to BLAS (measured on an AMD Zen 5 by
 * benches/tune_gemm.py: the AVX-512 kernel runs at about twice OpenBLAS's rate on one
 * core at every size tried, the AVX2 one matches it up to about this size, and the
 * SSE2 one only beats it on products too small to amortize BLAS's overhead). */
#if NN_VBYTES == 64
#define NN_BLAS_ABOVE ((ptrdiff_t)1 << 62)
#elif NN_VBYTES == 32
#define NN_BLAS_ABOVE ((ptrdiff_t)1 << 24)
#else
#define NN_BLAS_ABOVE ((ptrdiff_t)1 << 15)
#endif

/* Products with more multiply-adds than this use several threads (when built with
 * OpenMP): below it, waking the threads costs more than it saves. Only builds that
 * never call BLAS thread their own products: a BLAS pool and an OpenMP pool taking
 * turns would each spin on the cores the other needs. */
#if NN_VBYTES == 64
#define NN_PARALLEL_ABOVE ((ptrdiff_t)1 << 18)
#else
#define NN_PARALLEL_ABOVE ((ptrdiff_t)1 << 62)
#endif

#if defined(_OPENMP)
#include <omp.h>
#define NN_PRAGMA(x) _Pragma(#x)
#define NN_MAX_THREADS() omp_get_max_threads()
#define NN_NUM_THREADS() omp_get_num_threads()
#define NN_THREAD_NUM() omp_get_thread_num()
#else
#define NN_PRAGMA(x)
#define NN_MAX_THREADS() 1
#define NN_NUM_THREADS() 1
#define NN_THREAD_NUM() 0
#endif

/* The most lanes a vector has (AVX-512 floats); sizes the packing buffer. */
#define NN_MAX_LANES 16

/* ------------------------------------------------------------------------------ */
/* Fast float32 exp, tanh, sigmoid: branch-free (selects, not jumps), so the loops */
/* that call them vectorize. Accuracy: a few float32 ulp (tests/test_fastmath.py). */
/* ------------------------------------------------------------------------------ */

/* The steps of the float32 exp and tanh, as macros over any float type (float or a
 * vector of floats), so the scalar functions and nn_tanhf_array compute the same
 * operations in the same order from one source. */
/* x = n ln 2 + r: t holds round(x log2 e) in its low bits (the 1.5 * 2^23 trick), n is
 * that integer as a float, r the remainder, with ln 2 split into a part with few
 * significant bits (so that n * hi is exact) and the rest. */
#define NN_EXP_REDUCE(x, t, n, r)                                                     \
    t = (x) * 1.44269504088896341f + 12582912.0f;                                     \
    n = t - 12582912.0f;                                                              \
    r = (x) - n * 0.693359375f; /* 355/512 */                                         \
    r = r - n * -2.12194440054690583e-4f
/* p = e^r by its Taylor polynomial to degree 7, for |r| <= ln2 / 2 (truncation error
 * < 1e-8 relative); p starts as the constant 1/7!. */
#define NN_EXP_POLY(p, r)                                                             \
    p = p * (r) + 1.0f / 720;                                                         \
    p = p * (r) + 1.0f / 120;                                                         \
    p = p * (r) + 1.0f / 24;                                                          \
    p = p * (r) + 1.0f / 6;                                                           \
    p = p * (r) + 0.5f;                                                               \
    p = p * (r) + 1.0f;                                                               \
    p = p * (r) + 1.0f
/* small = tanh(a) for a = |x| < 0.4 by its odd Taylor polynomial through x^13 (x2 =
 * x * x); p starts as the constant 21844/6081075. */
#define NN_TANH_SMALL(small, a, x2, p)                                                \
    p = p * (x2) - 1382.0f / 155925;                                                  \
    p = p * (x2) + 62.0f / 2835;                                                      \
    p = p * (x2) - 17.0f / 315;                                                       \
    p = p * (x2) + 2.0f / 15;                                                         \
    p = p * (x2) - 1.0f / 3;                                                          \
    small = (a) + (a) * (x2) * p

/* e^x = 2^n e^r (NN_EXP_REDUCE, NN_EXP_POLY); 2^n built from n's bits. */
static inline float nn_expf(float x)
{
    x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    float t, n, r, p = 1.0f / 5040;
    NN_EXP_REDUCE(x, t, n, r);
    NN_EXP_POLY(p, r);
    int32_t ti;
    memcpy(&ti, &t, 4);
    int32_t bits = (ti - 0x4B400000 + 127) << 23; /* 2^n as a float */
    float scale;
    memcpy(&scale, &bits, 4);
    return p * scale;
}

/* tanh: an odd Taylor polynomial (through x^13) for |x| < 0.4, where the exp form
 * would cancel; (e - 1) / (e + 1) with e = exp(2|x|) above; the sign restored. */
static inline float nn_tanhf(float x)
{
    float a = fabsf(x);
    float x2 = x * x;
    float p = 21844.0f / 6081075, small;
    NN_TANH_SMALL(small, a, x2, p);
    float e = nn_expf(2.0f * (a < 9.0f ? a : 9.0f));
    float big = (e - 1.0f) / (e + 1.0f);
    float r = a >= 0.4f ? big : small;    /* (a NaN takes ``small``: stays NaN) */
    return copysignf(r, x);   /* (so tanh(-0) is -0) */
}

/* 1 / (1 + e^-x); for x << 0 the clamp in nn_expf keeps this finite. */
static inline float nn_sigmoidf(float x)
{
    return 1.0f / (1.0f + nn_expf(-x));
}

/* a[i] = nn_tanhf(z[i]) for i < n, whole vectors at a time: the same operations in
 * the same order (so the same results), with |x|, the sign, the clamp and the
 * select as bit operations and a min instruction. Compilers turn the scalar
 * function's selects into compares and blends or, for AVX2, leave the loop
 * unvectorized: this runs 1.9x (AVX-512) and 6.5x (AVX2) faster. */
#if defined(__GNUC__) && (defined(__AVX512F__) || defined(__AVX__) || defined(__SSE2__))
#include <immintrin.h>
typedef float nn_vf __attribute__((vector_size(NN_VBYTES)));
typedef float nn_vfu __attribute__((vector_size(NN_VBYTES), aligned(4), may_alias));
typedef int32_t nn_vi __attribute__((vector_size(NN_VBYTES)));
#if NN_VBYTES == 64
#define NN_VMIN(a, b) ((nn_vf)_mm512_min_ps((__m512)(a), (__m512)(b)))
#elif NN_VBYTES == 32
#define NN_VMIN(a, b) ((nn_vf)_mm256_min_ps((__m256)(a), (__m256)(b)))
#else
#define NN_VMIN(a, b) ((nn_vf)_mm_min_ps((__m128)(a), (__m128)(b)))
#endif
/* Lanes of a where the integer-vector mask is set, of b elsewhere, as integer vector
 * type I (bit operations, where a C ?: on vectors is not available). */
#define NN_SELECT_BITS(I, mask, a, b) (((mask) & (I)(a)) | (~(mask) & (I)(b)))
static inline void nn_tanhf_array(ptrdiff_t n, const float *z, float *a)
{
    const ptrdiff_t V = NN_VBYTES / 4;
    ptrdiff_t i = 0;
    for (; i + V <= n; i += V) {
        nn_vf x = *(const nn_vfu *)(z + i);
        nn_vi sign = (nn_vi)x & (int32_t)0x80000000;
        nn_vf ax = (nn_vf)((nn_vi)x & 0x7fffffff);
        nn_vf x2 = x * x;
        nn_vf p = (nn_vf){0} + 21844.0f / 6081075, small;
        NN_TANH_SMALL(small, ax, x2, p);
        /* nn_expf(y) for y = 2 min(|x|, 9) in [0, 18], where its clamp does nothing
           (min(9, NaN) is NaN, and a NaN takes ``small`` below). */
        nn_vf y = 2.0f * NN_VMIN((nn_vf){0} + 9.0f, ax);
        nn_vf t, k, r, e = (nn_vf){0} + 1.0f / 5040;
        NN_EXP_REDUCE(y, t, k, r);
        NN_EXP_POLY(e, r);
        e = e * (nn_vf)(((nn_vi)t - 0x4B400000 + 127) << 23);
        nn_vf big = (e - 1.0f) / (e + 1.0f);
        nn_vi use_big = ax >= 0.4f;
        nn_vi mag = NN_SELECT_BITS(nn_vi, use_big, big, small);
        *(nn_vfu *)(a + i) = (nn_vf)(mag | sign);
    }
    for (; i < n; i++) a[i] = nn_tanhf(z[i]);
}
#else
static inline void nn_tanhf_array(ptrdiff_t n, const float *z, float *a)
{
    for (ptrdiff_t i = 0; i < n; i++) a[i] = nn_tanhf(z[i]);
}
#endif

/* ------------------------------------------------------------------------------ */
/* float64 tanh, sigmoid, expm1 and softplus, at libm's accuracy                  */
/* ------------------------------------------------------------------------------ */
/* For |x| >= 0.35, tanh|x| = e / (e + 2) with e = expm1(2|x|), the form of the
 * classic libm (fdlibm, glibc) tanh, with 2|x| clamped to 44 (where e / (e + 2)
 * already rounds to 1) and expm1 by its own reduction and polynomial; below, where
 * that quotient's roundings would cost up to 2.6 ulp, the odd Taylor polynomial
 * through x^27 (truncation error below 5e-19 relative). Then the sign is put back.
 * No branches, so a loop of it vectorizes: libm's tanh is a function call per value,
 * which took 83% of a float64 tiny network's training step. */
/* The reduction of e^y: y = k ln2 + r, |r| <= ln2 / 2 (ln 2 in two parts, so that
 * k * NN_LN2_HI is exact for |k| < 2^21), k in t's low bits (1.5 * 2^52 added);
 * e = expm1(r) = r + r^2 (1/2! + r/3! + ... + r^11/13!) (truncation error below
 * 1.2e-17 relative, a tenth of an ulp); p starts as 1/13!. For -40 <= y <= 44,
 * expm1(y) = 2^k e + (2^k - 1), both terms exact but the last rounding (nn_tanh,
 * nn_expm1_neg); for y <= 0, e^y = (1 + e) 2^k (nn_exp_neg: sigmoid, softplus). */
#define NN_LN2_HI 6.93147180369123816490e-01
#define NN_LN2_LO 1.90821492927058770002e-10
#define NN_EXPM1_REDUCED(y, t, k, r, p, e)                                            \
    t = (y) * 1.44269504088896340736 + 6755399441055744.0; /* 1.5 * 2^52 */           \
    k = t - 6755399441055744.0;                                                       \
    r = ((y) - k * NN_LN2_HI) - k * NN_LN2_LO;                                        \
    p = p * r + 1.0 / 479001600;   /* 1/12! */                                        \
    p = p * r + 1.0 / 39916800;                                                       \
    p = p * r + 1.0 / 3628800;                                                        \
    p = p * r + 1.0 / 362880;                                                         \
    p = p * r + 1.0 / 40320;                                                          \
    p = p * r + 1.0 / 5040;                                                           \
    p = p * r + 1.0 / 720;                                                            \
    p = p * r + 1.0 / 120;                                                            \
    p = p * r + 1.0 / 24;                                                             \
    p = p * r + 1.0 / 6;                                                              \
    p = p * r + 0.5;                                                                  \
    e = r + r * r * p              /* expm1(r) */

/* small = tanh(a) for 0 <= a < 0.35, s = a * a: a + a s P(s), P's coefficients those
 * of tanh's Taylor series (2^2n (2^2n - 1) B_2n / (2n)!); p starts as x^27's. */
#define NN_TANH_SMALL_D(small, a, s, p)                                               \
    p = p * (s) + 58870668456604.0 / 3698160658676859375.0;                           \
    p = p * (s) - 113927491862.0 / 2900518163668125.0;                                \
    p = p * (s) + 18888466084.0 / 194896477400625.0;                                  \
    p = p * (s) - 443861162.0 / 1856156927625.0;                                      \
    p = p * (s) + 6404582.0 / 10854718875.0;                                          \
    p = p * (s) - 929569.0 / 638512875.0;                                             \
    p = p * (s) + 21844.0 / 6081075.0;                                                \
    p = p * (s) - 1382.0 / 155925.0;                                                  \
    p = p * (s) + 62.0 / 2835.0;                                                      \
    p = p * (s) - 17.0 / 315.0;                                                       \
    p = p * (s) + 2.0 / 15.0;                                                         \
    p = p * (s) - 1.0 / 3.0;                                                          \
    small = (a) + (a) * (s) * p
#define NN_TANH_SMALL_D_START (-8374643517010684.0 / 1298054391195577640625.0)

/* k, the integer in t's low bits (NN_EXPM1_REDUCED). */
static inline int64_t nn_k_of(double t)
{
    int64_t bits;
    memcpy(&bits, &t, 8);
    return bits - 0x4338000000000000LL;
}

/* 2^k for -1022 <= k <= 1023. */
static inline double nn_pow2(int64_t k)
{
    int64_t bits = (k + 1023) << 52;
    double scale;
    memcpy(&scale, &bits, 8);
    return scale;
}

static inline double nn_tanh(double x)
{
    double a = fabs(x), s = a * a, q = NN_TANH_SMALL_D_START, small;
    NN_TANH_SMALL_D(small, a, s, q);
    double y = 44.0 < 2.0 * a ? 44.0 : 2.0 * a;    /* (a NaN stays NaN) */
    double t, k, r, p = 1.0 / 6227020800, e;        /* 1/13! */
    NN_EXPM1_REDUCED(y, t, k, r, p, e);
    double scale = nn_pow2(nn_k_of(t));
    e = e * scale + (scale - 1.0);                  /* expm1(y) */
    double big = e / (e + 2.0);
    return copysign(a >= 0.35 ? big : small, x);    /* (a NaN takes ``small``) */
}

/* expm1(y) for y <= 0 (the ELU's negative side; y > 0 is taken as 0): y clamped at
 * -40, where expm1 already rounds to -1; then 2^k expm1(r) + (2^k - 1) as in
 * nn_tanh, exact but the last rounding for k >= -53. Within 1.2 ulp of expm1
 * (glibc's: 0.8); a float32 argument's, rounded to float32, within half an ulp.
 * Branch-free and inline, so that a loop of it vectorizes. */
static inline double nn_expm1_neg(double y)
{
    y = y > 0.0 ? 0.0 : y;
    y = y < -40.0 ? -40.0 : y;                      /* (a NaN stays NaN) */
    double t, k, r, p = 1.0 / 6227020800, e;
    NN_EXPM1_REDUCED(y, t, k, r, p, e);
    double scale = nn_pow2(nn_k_of(t));
    e = e * scale + (scale - 1.0);
    return y == 0.0 ? y : e;                        /* (expm1(-0) is -0) */
}

/* e^y for y <= 0 (y clamped at -746, where it is already 0): (1 + expm1(r)) 2^k, 2^k
 * applied in two halves so that neither leaves the normal range before the result
 * does (subnormal results come out right). */
static inline double nn_exp_neg(double y)
{
    y = y < -746.0 ? -746.0 : y;                    /* (a NaN stays NaN) */
    double t, k, r, p = 1.0 / 6227020800, e;
    NN_EXPM1_REDUCED(y, t, k, r, p, e);
    int64_t k0 = nn_k_of(t), k1 = k0 >> 1;
    return ((1.0 + e) * nn_pow2(k1)) * nn_pow2(k0 - k1);
}

/* log1p(u) for 0 <= u <= 1: w = 1 + u, rounded, and c = u - (w - 1), its rounding
 * error (exact); log(w) = k ln2 + log(1 + f), k = 1 and m = w / 2 above sqrt(2), and
 * log(1 + f) = f - (f^2/2 - s (f^2/2 + R(s^2))), s = f / (2 + f) (fdlibm's form: the
 * leading terms f - f^2/2 carry no rounding of s), R by the series of 2 atanh(s) / s - 2
 * to s^24 (truncation below 1e-17 relative); log1p(u) = log(w) + c / w. */
static inline double nn_log1p_unit(double u)
{
    double w = 1.0 + u;
    double c = u - (w - 1.0);
    double k = w > 1.4142135623730951 ? 1.0 : 0.0;
    double m = w > 1.4142135623730951 ? 0.5 * w : w;
    double f = m - 1.0;
    double s = f / (2.0 + f), z = s * s, hfsq = 0.5 * f * f;
    double R = 2.0 / 25;
    R = R * z + 2.0 / 23;
    R = R * z + 2.0 / 21;
    R = R * z + 2.0 / 19;
    R = R * z + 2.0 / 17;
    R = R * z + 2.0 / 15;
    R = R * z + 2.0 / 13;
    R = R * z + 2.0 / 11;
    R = R * z + 2.0 / 9;
    R = R * z + 2.0 / 7;
    R = R * z + 2.0 / 5;
    R = R * z + 2.0 / 3;
    R = R * z;
    double logm = f - (hfsq - s * (hfsq + R));
    return (k * NN_LN2_HI + (logm + k * NN_LN2_LO)) + c / w;
}

/* softplus(z) = max(z, 0) + log1p(e^-|z|). Branch-free and inline, so that a loop of
 * it vectorizes. */
static inline double nn_softplus(double z)
{
    return (z > 0.0 ? z : 0.0) + nn_log1p_unit(nn_exp_neg(-fabs(z)));
}

/* 1 / (1 + e^-z) for z >= 0, e^z / (1 + e^z) below: libm's formulas (the float64 path
 * of sigmoid in _activations.pxi), with e^-|z| by nn_exp_neg. */
static inline double nn_sigmoid(double z)
{
    double e = nn_exp_neg(-fabs(z));
    return (z >= 0 ? 1.0 : e) / (1.0 + e);
}

#if defined(__GNUC__) && (defined(__AVX512F__) || defined(__AVX__) || defined(__SSE2__))
typedef double nn_vd __attribute__((vector_size(NN_VBYTES)));
typedef double nn_vdu __attribute__((vector_size(NN_VBYTES), aligned(8), may_alias));
typedef int64_t nn_vl __attribute__((vector_size(NN_VBYTES)));
/* nn_pow2 of a vector of k. */
#define NN_POW2_D(k) ((nn_vd)(((k) + 1023) << 52))
/* a[i] = nn_tanh(z[i]) for i < n, whole vectors at a time: the same operations in the
 * same order (so the same results), with |x|, the sign, the clamp and the select as
 * bit operations and compares. */
static inline void nn_tanh_array(ptrdiff_t n, const double *z, double *a)
{
    const ptrdiff_t V = NN_VBYTES / 8;
    ptrdiff_t i = 0;
    for (; i + V <= n; i += V) {
        nn_vd x = *(const nn_vdu *)(z + i);
        nn_vl sign = (nn_vl)x & (int64_t)0x8000000000000000ULL;
        nn_vd ax = (nn_vd)((nn_vl)x & (int64_t)0x7fffffffffffffffLL);
        nn_vd s = ax * ax, q = (nn_vd){0} + NN_TANH_SMALL_D_START, small;
        NN_TANH_SMALL_D(small, ax, s, q);
        nn_vd y = 2.0 * ax;
        nn_vl clamp = (nn_vd){0} + 44.0 < y;
        y = (nn_vd)NN_SELECT_BITS(nn_vl, clamp, (nn_vd){0} + 44.0, y);
        nn_vd t, k, r, p = (nn_vd){0} + 1.0 / 6227020800, e;
        NN_EXPM1_REDUCED(y, t, k, r, p, e);
        nn_vd scale = NN_POW2_D((nn_vl)t - 0x4338000000000000LL);
        e = e * scale + (scale - 1.0);
        nn_vd big = e / (e + 2.0);
        nn_vl use_big = ax >= 0.35;
        nn_vl mag = NN_SELECT_BITS(nn_vl, use_big, big, small);
        *(nn_vdu *)(a + i) = (nn_vd)(mag | sign);
    }
    for (; i < n; i++) a[i] = nn_tanh(z[i]);
}
/* a[i] = nn_sigmoid(z[i]) for i < n, whole vectors at a time, as nn_tanh_array. */
static inline void nn_sigmoid_array(ptrdiff_t n, const double *z, double *a)
{
    const ptrdiff_t V = NN_VBYTES / 8;
    ptrdiff_t i = 0;
    for (; i + V <= n; i += V) {
        nn_vd x = *(const nn_vdu *)(z + i);
        nn_vd y = (nn_vd)((nn_vl)x | (int64_t)0x8000000000000000ULL);   /* -|x| */
        nn_vl clamp = y < -746.0;
        y = (nn_vd)NN_SELECT_BITS(nn_vl, clamp, (nn_vd){0} - 746.0, y);
        nn_vd t, k, r, p = (nn_vd){0} + 1.0 / 6227020800, e;
        NN_EXPM1_REDUCED(y, t, k, r, p, e);
        nn_vl k0 = (nn_vl)t - 0x4338000000000000LL, k1 = k0 >> 1;
        e = ((1.0 + e) * NN_POW2_D(k1)) * NN_POW2_D(k0 - k1);
        nn_vl positive = x >= 0.0;
        nn_vd num = (nn_vd)NN_SELECT_BITS(nn_vl, positive, (nn_vd){0} + 1.0, e);
        *(nn_vdu *)(a + i) = num / (1.0 + e);
    }
    for (; i < n; i++) a[i] = nn_sigmoid(z[i]);
}
#else
static inline void nn_tanh_array(ptrdiff_t n, const double *z, double *a)
{
    for (ptrdiff_t i = 0; i < n; i++) a[i] = nn_tanh(z[i]);
}
static inline void nn_sigmoid_array(ptrdiff_t n, const double *z, double *a)
{
    for (ptrdiff_t i = 0; i < n; i++) a[i] = nn_sigmoid(z[i]);
}
#endif

/* ------------------------------------------------------------------------------ */
/* Matrix multiply: C (M x N, row-major, leading dimension N) = or += op(A) op(B)  */
/* ------------------------------------------------------------------------------ */
/* Element (i, p) of op(A) is A[i*rsa + p*csa]; element (p, j) of op(B) is
 * B[p*rsb + j*csb]: so either operand may be stored transposed. For each block of
 * NN_KC values of p, B's block is packed into panels of 2 vectors' width (1 vector
 * for a narrow last panel), zero-padded, contiguous; then each panel is swept by
 * register tiles of NN_MR rows of C. Rows of A are read in place as scalars and
 * broadcast. ``pack`` holds NN_KC * (N + 2 * NN_MAX_LANES) values. */

/* AVX-512 helpers of the matrix multiply: masked loads and stores, a 16 x 16
 * transpose, 16 dot products at once. Builds without AVX-512 get do-nothing stand-ins,
 * never called (every call is behind NN_AVX512_HELPERS), so the shared code compiles. */
#if defined(__AVX512F__) && defined(__GNUC__)
#include <immintrin.h>
#define NN_AVX512_HELPERS 1
/* c[0 .. n) (+)= the first n lanes of the vector at x (n < the vector's lanes). */
static inline void nn_store_masked_f(float *c, const void *x, ptrdiff_t n, int accumulate)
{
    __mmask16 m = (__mmask16)((1u << n) - 1);
    __m512 v = _mm512_loadu_ps((const float *)x);
    if (accumulate) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, c));
    _mm512_mask_storeu_ps(c, m, v);
}
static inline void nn_store_masked_d(double *c, const void *x, ptrdiff_t n, int accumulate)
{
    __mmask8 m = (__mmask8)((1u << n) - 1);
    __m512d v = _mm512_loadu_pd((const double *)x);
    if (accumulate) v = _mm512_add_pd(v, _mm512_maskz_loadu_pd(m, c));
    _mm512_mask_storeu_pd(c, m, v);
}
/* dst[0 .. lanes) = src[0 .. n), then zeros (n < the vector's lanes). */
static inline void nn_load_masked_f(const float *src, ptrdiff_t n, float *dst)
{
    _mm512_storeu_ps(dst, _mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1), src));
}
static inline void nn_load_masked_d(const double *src, ptrdiff_t n, double *dst)
{
    _mm512_storeu_pd(dst, _mm512_maskz_loadu_pd((__mmask8)((1u << n) - 1), src));
}

/* d[c*ldd + r] = s[r*lds + c] for a 16 x 16 block of floats, in registers: pairs,
 * then quads within each 128-bit lane, then the lanes themselves. 64 shuffles in
 * place of 256 scalar stores, for packing a weight matrix read as W^T. */
static inline void nn_transpose16_f(const float *s, ptrdiff_t lds, float *d, ptrdiff_t ldd)
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
static inline void nn_lane_sums16_f(const __m512 *acc, float *c, int accumulate)
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
 * (nn_lane_sums16_f). */
static inline void nn_dots16_f(ptrdiff_t K, const float *a, ptrdiff_t lda, const float *b,
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
    nn_lane_sums16_f(acc, c, accumulate);
}
/* c[r] = sum_p a[r*lda + p], p < K, for 16 rows r (nn_dots16_f without b). */
static inline void nn_sums16_f(ptrdiff_t K, const float *a, ptrdiff_t lda, float *c)
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
    nn_lane_sums16_f(acc, c, 0);
}
#else
#define NN_AVX512_HELPERS 0
static inline void nn_store_masked_f(float *c, const void *x, ptrdiff_t n, int accumulate)
{
    (void)c; (void)x; (void)n; (void)accumulate;
}
static inline void nn_store_masked_d(double *c, const void *x, ptrdiff_t n, int accumulate)
{
    (void)c; (void)x; (void)n; (void)accumulate;
}
static inline void nn_load_masked_f(const float *src, ptrdiff_t n, float *dst)
{
    (void)src; (void)n; (void)dst;
}
static inline void nn_load_masked_d(const double *src, ptrdiff_t n, double *dst)
{
    (void)src; (void)n; (void)dst;
}
static inline void nn_transpose16_f(const float *s, ptrdiff_t lds, float *d, ptrdiff_t ldd)
{
    (void)s; (void)lds; (void)d; (void)ldd;
}
static inline void nn_dots16_f(ptrdiff_t K, const float *a, ptrdiff_t lda, const float *b,
                               float *c, int accumulate)
{
    (void)K; (void)a; (void)lda; (void)b; (void)c; (void)accumulate;
}
static inline void nn_sums16_f(ptrdiff_t K, const float *a, ptrdiff_t lda, float *c)
{
    (void)K; (void)a; (void)lda; (void)c;
}
#endif

#if defined(__GNUC__)

#define NN_DEFINE_GEMM(T, NAME)                                                       \
typedef T NAME##_v __attribute__((vector_size(NN_VBYTES)));                           \
typedef T NAME##_vu __attribute__((vector_size(NN_VBYTES), aligned(sizeof(T)),        \
                                   may_alias));                                       \
enum { NAME##_V = NN_VBYTES / sizeof(T) };                                            \
                                                                                      \
/* The sum of x's lanes, lane 0 first (a fixed order, so results depend on nothing  \
   but the inputs). */                                                                \
static inline T NAME##_hsum(NAME##_v x)                                               \
{                                                                                     \
    T lanes[NAME##_V], s = 0;                                                         \
    memcpy(lanes, &x, sizeof(x));                                                     \
    for (int u = 0; u < NAME##_V; u++) s += lanes[u];                                 \
    return s;                                                                         \
}                                                                                     \
                                                                                      \
/* Store ``n`` (<= V) lanes of x at c, adding to what is there if ``accumulate``. */  \
static inline void NAME##_store(T *c, NAME##_v x, ptrdiff_t n, int accumulate)        \
{                                                                                     \
    if (n == NAME##_V) {                                                              \
        if (accumulate) x += *(NAME##_vu *)c;                                         \
        *(NAME##_vu *)c = x;                                                          \
    } else if (NN_AVX512_HELPERS) {                                                      \
        /* A narrow C (an output layer of 10 classes): masked lanes, which neither  \
           touch the memory past row's end nor cost a store per value. */           \
        if (sizeof(T) == 4) nn_store_masked_f((float *)c, &x, n, accumulate);         \
        else nn_store_masked_d((double *)c, &x, n, accumulate);                       \
    } else {                                                                          \
        T lanes[NAME##_V];                                                            \
        memcpy(lanes, &x, sizeof(x));                                                 \
        for (ptrdiff_t u = 0; u < n; u++) c[u] = accumulate ? c[u] + lanes[u] : lanes[u]; \
    }                                                                                 \
}                                                                                     \
                                                                                      \
/* Tile of ``rows`` (<= NN_MR) x ``cols`` (<= 2V) of C from a 2-vector panel. */     \
static inline void NAME##_tile2(ptrdiff_t kc, const T *a, ptrdiff_t rsa,              \
                                ptrdiff_t csa, ptrdiff_t rows, const T *bp, T *c,     \
                                ptrdiff_t ldc, ptrdiff_t cols, int accumulate)        \
{                                                                                     \
    NAME##_v x0[NN_MR], x1[NN_MR];                                                    \
    const T *ar[NN_MR];                                                               \
    for (int r = 0; r < NN_MR; r++) {                                                 \
        x0[r] = (NAME##_v){0};                                                        \
        x1[r] = (NAME##_v){0};                                                        \
        ar[r] = a + (r < rows ? r : 0) * rsa; /* spare rows repeat row 0 */           \
    }                                                                                 \
    for (ptrdiff_t p = 0; p < kc; p++) {                                              \
        NAME##_v b0 = *(const NAME##_v *)(bp + p * 2 * NAME##_V);                     \
        NAME##_v b1 = *(const NAME##_v *)(bp + p * 2 * NAME##_V + NAME##_V);          \
        for (int r = 0; r < NN_MR; r++) {                                             \
            T s = ar[r][p * csa];                                                     \
            x0[r] += s * b0;                                                          \
            x1[r] += s * b1;                                                          \
        }                                                                             \
    }                                                                                 \
    ptrdiff_t c0 = cols < NAME##_V ? cols : NAME##_V;                                 \
    for (int r = 0; r < NN_MR; r++) {                                                 \
        if (r < rows) {                                                               \
            NAME##_store(c + r * ldc, x0[r], c0, accumulate);                         \
            if (cols > NAME##_V)                                                      \
                NAME##_store(c + r * ldc + NAME##_V, x1[r], cols - NAME##_V, accumulate); \
        }                                                                             \
    }                                                                                 \
}                                                                                     \
                                                                                      \
/* Tile of ``rows`` x ``cols`` (<= V) of C from a 1-vector panel. */                  \
static inline void NAME##_tile1(ptrdiff_t kc, const T *a, ptrdiff_t rsa,              \
                                ptrdiff_t csa, ptrdiff_t rows, const T *bp, T *c,     \
                                ptrdiff_t ldc, ptrdiff_t cols, int accumulate)        \
{                                                                                     \
    NAME##_v x0[NN_MR];                                                               \
    const T *ar[NN_MR];                                                               \
    for (int r = 0; r < NN_MR; r++) {                                                 \
        x0[r] = (NAME##_v){0};                                                        \
        ar[r] = a + (r < rows ? r : 0) * rsa;                                         \
    }                                                                                 \
    for (ptrdiff_t p = 0; p < kc; p++) {                                              \
        NAME##_v b0 = *(const NAME##_v *)(bp + p * NAME##_V);                         \
        for (int r = 0; r < NN_MR; r++) x0[r] += ar[r][p * csa] * b0;                 \
    }                                                                                 \
    for (int r = 0; r < NN_MR; r++)                                                   \
        if (r < rows) NAME##_store(c + r * ldc, x0[r], cols, accumulate);             \
}                                                                                     \
                                                                                      \
/* Pack panel q of B's rows pc .. pc+kc-1 (width 2V, or V for a narrow last panel,   \
   zero-padded) into slot ``slot`` of the packing buffer. */                          \
static inline const T *NAME##_pack(ptrdiff_t q, ptrdiff_t slot, ptrdiff_t pc,         \
                                   ptrdiff_t kc, ptrdiff_t N, const T *B,             \
                                   ptrdiff_t rsb, ptrdiff_t csb, T *bp0)              \
{                                                                                     \
    const ptrdiff_t V = NAME##_V;                                                     \
    ptrdiff_t j = q * 2 * V;                                                          \
    ptrdiff_t w = N - j <= V ? V : 2 * V;                                             \
    ptrdiff_t valid = N - j < w ? N - j : w;                                          \
    T *bp = bp0 + slot * 2 * V * NN_KC;                                               \
    for (ptrdiff_t p = 0; p < kc; p++) {                                              \
        const T *src = B + (pc + p) * rsb + j * csb;                                  \
        T *dst = bp + p * w;                                                          \
        /* A loop, not memcpy: rows are short and a library call per row costs     \
           more than the copy. */                                                     \
        if (csb == 1 && NN_AVX512_HELPERS && valid < w) {                                \
            /* A narrow panel's rows: one masked load (zeros past ``valid``) and     \
               whole-vector stores, in place of a value at a time. */                 \
            for (ptrdiff_t u = 0; u < w; u += V) {                                    \
                ptrdiff_t left = valid - u;                                           \
                if (left >= V) *(NAME##_v *)(dst + u) = *(const NAME##_vu *)(src + u); \
                else if (sizeof(T) == 4)                                              \
                    nn_load_masked_f((const float *)(src + u), left > 0 ? left : 0,   \
                                     (float *)(dst + u));                             \
                else                                                                  \
                    nn_load_masked_d((const double *)(src + u), left > 0 ? left : 0,  \
                                     (double *)(dst + u));                            \
            }                                                                         \
            continue;                                                                 \
        } else if (csb == 1) {                                                        \
            for (ptrdiff_t u = 0; u < valid; u++) dst[u] = src[u];                    \
        } else if (csb <= rsb) {                                                      \
            for (ptrdiff_t u = 0; u < valid; u++) dst[u] = src[u * csb];              \
        }                                                                             \
        for (ptrdiff_t u = valid; u < w; u++) dst[u] = 0;                             \
    }                                                                                 \
    if (csb != 1 && csb > rsb) {                                                      \
        /* B stored transposed (a weight matrix read as W^T): walk each stored row  \
           along its contiguous run of p, rather than reading ``valid`` scattered   \
           cache lines for every p. */                                               \
        ptrdiff_t u0 = 0;                                                             \
        if (NN_AVX512_HELPERS && sizeof(T) == 4 && rsb == 1) {                      \
            /* Whole 16 x 16 blocks in registers (float, AVX-512). */                 \
            for (; u0 + 16 <= valid; u0 += 16) {                                      \
                const T *src = B + pc + (j + u0) * csb;                               \
                ptrdiff_t p = 0;                                                      \
                for (; p + 16 <= kc; p += 16)                                         \
                    nn_transpose16_f((const float *)(src + p), csb,                   \
                                     (float *)(bp + p * w + u0), w);                  \
                for (; p < kc; p++)                                                   \
                    for (ptrdiff_t u = 0; u < 16; u++)                                \
                        bp[p * w + u0 + u] = src[p + u * csb];                        \
            }                                                                         \
        }                                                                             \
        for (ptrdiff_t u = u0; u < valid; u++) {                                      \
            const T *src = B + pc * rsb + (j + u) * csb;                              \
            for (ptrdiff_t p = 0; p < kc; p++) bp[p * w + u] = src[p * rsb];          \
        }                                                                             \
    }                                                                                 \
    return bp;                                                                        \
}                                                                                     \
                                                                                      \
/* C[i] (+)= sum_p A[i*rsa + p] b[p] for a one-column C whose A rows and b are both   \
   contiguous along p: dot products along the vector lanes, no packing at all. */     \
static inline void NAME##_dots(ptrdiff_t M, ptrdiff_t K, const T *A, ptrdiff_t rsa,   \
                               const T *b, T *C, int accumulate)                      \
{                                                                                     \
    const ptrdiff_t V = NAME##_V;                                                     \
    ptrdiff_t i0 = 0;                                                                 \
    if (NN_AVX512_HELPERS && sizeof(T) == 4)                                        \
        for (; i0 + 16 <= M; i0 += 16)                                                \
            nn_dots16_f(K, (const float *)(A + i0 * rsa), rsa, (const float *)b,      \
                        (float *)(C + i0), accumulate);                               \
    for (ptrdiff_t i = i0; i < M; i++) {                                              \
        const T *a = A + i * rsa;                                                     \
        NAME##_v x = {0};                                                             \
        ptrdiff_t p = 0;                                                              \
        for (; p + V <= K; p += V)                                                    \
            x += *(const NAME##_vu *)(a + p) * *(const NAME##_vu *)(b + p);           \
        T s = NAME##_hsum(x);                                                         \
        for (; p < K; p++) s += a[p] * b[p];                                          \
        C[i] = accumulate ? C[i] + s : s;                                             \
    }                                                                                 \
}                                                                                     \
                                                                                      \
/* C (+)= op(A) op(B) for a product of a few hundred multiply-adds whose C is at most \
   one vector wide and whose B rows are contiguous: row by row, each B row loaded    \
   where it lies. Packing, and tiles of NN_MR rows when M is 2, cost more than such  \
   a product itself (a tiny network's every product is one). */                      \
static inline void NAME##_direct(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const T *A,   \
                                 ptrdiff_t rsa, ptrdiff_t csa, const T *B,            \
                                 ptrdiff_t rsb, T *C, int accumulate)                 \
{                                                                                     \
    for (ptrdiff_t i = 0; i < M; i++) {                                               \
        NAME##_v x = {0};                                                             \
        for (ptrdiff_t p = 0; p < K; p++) {                                           \
            NAME##_v b;                                                               \
            if (N == NAME##_V) b = *(const NAME##_vu *)(B + p * rsb);                 \
            else if (sizeof(T) == 4) nn_load_masked_f((const float *)(B + p * rsb), N, \
                                                      (float *)&b);                   \
            else nn_load_masked_d((const double *)(B + p * rsb), N, (double *)&b);    \
            x += A[i * rsa + p * csa] * b;                                            \
        }                                                                             \
        NAME##_store(C + i * N, x, N, accumulate);                                    \
    }                                                                                 \
}                                                                                     \
                                                                                      \
/* Whether NAME##_direct takes a product: C ``width`` values wide, A of ``a_values``   \
   values, B's rows contiguous. */                                                    \
static inline int NAME##_direct_fits(ptrdiff_t width, ptrdiff_t a_values,            \
                                     int b_rows_contiguous)                           \
{                                                                                     \
    return NN_AVX512_HELPERS && width <= NAME##_V && b_rows_contiguous                \
           && a_values <= NN_DIRECT_MAX;                                              \
}                                                                                     \
                                                                                      \
/* Row tiles t0 .. t1-1 of C's columns under packed panel q. */                       \
static inline void NAME##_sweep(ptrdiff_t q, ptrdiff_t t0, ptrdiff_t t1,              \
                                ptrdiff_t pc, ptrdiff_t kc, ptrdiff_t M, ptrdiff_t N, \
                                const T *A, ptrdiff_t rsa, ptrdiff_t csa,             \
                                const T *bp, T *C, int acc)                           \
{                                                                                     \
    const ptrdiff_t V = NAME##_V;                                                     \
    ptrdiff_t j = q * 2 * V;                                                          \
    ptrdiff_t w = N - j <= V ? V : 2 * V;                                             \
    ptrdiff_t cols = N - j < w ? N - j : w;                                           \
    for (ptrdiff_t t = t0; t < t1; t++) {                                             \
        ptrdiff_t i = t * NN_MR;                                                      \
        ptrdiff_t rows = M - i < NN_MR ? M - i : NN_MR;                               \
        const T *a = A + i * rsa + pc * csa;                                          \
        if (w == V)                                                                   \
            NAME##_tile1(kc, a, rsa, csa, rows, bp, C + i * N + j, N, cols, acc);     \
        else                                                                          \
            NAME##_tile2(kc, a, rsa, csa, rows, bp, C + i * N + j, N, cols, acc);     \
    }                                                                                 \
}                                                                                     \
                                                                                      \
/* Panels q0 .. q1-1 of C, all rows: pack each panel, then sweep it. Each panel is    \
   packed in its own slot when threads share the buffer (``slot_per_panel``), else   \
   all in slot 0, which is then all the buffer a sequential product touches. */       \
static inline void NAME##_panels(ptrdiff_t q0, ptrdiff_t q1, ptrdiff_t n_tiles,       \
                                 ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const T *A,   \
                                 ptrdiff_t rsa, ptrdiff_t csa, const T *B,            \
                                 ptrdiff_t rsb, ptrdiff_t csb, T *C, int accumulate,  \
                                 T *bp0, int slot_per_panel)                          \
{                                                                                     \
    const ptrdiff_t kb = NN_KBLOCK(K);                                                \
    for (ptrdiff_t pc = 0; pc < K; pc += kb) {                                        \
        ptrdiff_t kc = K - pc < kb ? K - pc : kb;                                     \
        for (ptrdiff_t q = q0; q < q1; q++) {                                         \
            const T *bp = NAME##_pack(q, slot_per_panel ? q : 0, pc, kc, N, B, rsb,   \
                                      csb, bp0);                                      \
            NAME##_sweep(q, 0, n_tiles, pc, kc, M, N, A, rsa, csa, bp, C,             \
                         accumulate || pc > 0);                                       \
        }                                                                             \
    }                                                                                 \
}                                                                                     \
                                                                                      \
static void NAME(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const T *A, ptrdiff_t rsa,    \
                 ptrdiff_t csa, const T *B, ptrdiff_t rsb, ptrdiff_t csb, T *C,       \
                 int accumulate, T *pack)                                             \
{                                                                                     \
    const ptrdiff_t V = NAME##_V;                                                     \
    const ptrdiff_t n_panels = (N + 2 * V - 1) / (2 * V);                             \
    const ptrdiff_t n_tiles = (M + NN_MR - 1) / NN_MR;                                \
    /* The packing buffer must be vector-aligned for the aligned panel loads. */      \
    T *bp0 = (T *)(((uintptr_t)pack + NN_VBYTES - 1) & ~(uintptr_t)(NN_VBYTES - 1));  \
    int threaded = M * N * K > NN_PARALLEL_ABOVE && NN_MAX_THREADS() > 1;             \
    if (K == 0) {                                                                     \
        if (!accumulate)                                                              \
            for (ptrdiff_t i = 0; i < M; i++) memset(C + i * N, 0, N * sizeof(T));   \
        return;                                                                       \
    }                                                                                 \
    /* Products too small to thread or pack (all of a tiny network's). */            \
    if (N > 1 && NAME##_direct_fits(N, M * K, csb == 1)) {                           \
        NAME##_direct(M, N, K, A, rsa, csa, B, rsb, C, accumulate);                   \
        return;                                                                       \
    }                                                                                 \
    if (N == 1 && csa == 1 && rsb == 1 && !threaded) {                                \
        NAME##_dots(M, K, A, rsa, B, C, accumulate);                                  \
        return;                                                                       \
    }                                                                                 \
    if (N == 1 && M > 1 && !threaded) {                                               \
        /* A one-column C (M x 1) is, in the same memory, the one-row C^T = op(B)^T    \
           op(A)^T: solved that way, the M values lie along the vector lanes instead  \
           of filling one lane of each vector. (Sequential only: the panels of the    \
           swapped product all use slot 0, and the buffer is sized for N, not M.) */  \
        if (NAME##_direct_fits(M, M * K, rsa == 1))                                   \
            NAME##_direct(1, M, K, B, 0, rsb, A, csa, C, accumulate);                 \
        else                                                                          \
            NAME##_panels(0, (M + 2 * V - 1) / (2 * V), 1, 1, M, K, B, 0, rsb, A,     \
                          csa, rsa, C, accumulate, bp0, 0);                           \
        return;                                                                       \
    }                                                                                 \
    /* Threads (when built with OpenMP and the product is large enough to pay for    \
       waking them) split the panels: each packs and sweeps its own, with no barrier \
       until the end. Every element of C is summed in the same order whatever the    \
       thread count, so the results are the same. */                                 \
    if (!threaded) {                                                                  \
        /* No OpenMP region at all: entering one costs microseconds. */               \
        NAME##_panels(0, n_panels, n_tiles, M, N, K, A, rsa, csa, B, rsb, csb, C,     \
                      accumulate, bp0, 0);                                            \
        return;                                                                       \
    }                                                                                 \
    if (n_panels >= NN_MAX_THREADS()) {                                               \
        NN_PRAGMA(omp parallel)                                                       \
        {                                                                             \
            ptrdiff_t nt = NN_NUM_THREADS(), id = NN_THREAD_NUM();                    \
            NAME##_panels(id * n_panels / nt, (id + 1) * n_panels / nt, n_tiles,      \
                          M, N, K, A, rsa, csa, B, rsb, csb, C, accumulate, bp0, 1);  \
        }                                                                             \
        return;                                                                       \
    }                                                                                 \
    /* Fewer panels than threads (a narrow C): the panels are packed once, then the  \
       threads split the row tiles. */                                                \
    const ptrdiff_t kb = NN_KBLOCK(K);                                                \
    NN_PRAGMA(omp parallel)                                                           \
    for (ptrdiff_t pc = 0; pc < K; pc += kb) {                                        \
        ptrdiff_t kc = K - pc < kb ? K - pc : kb;                                     \
        NN_PRAGMA(omp single)                                                         \
        for (ptrdiff_t q = 0; q < n_panels; q++)                                      \
            NAME##_pack(q, q, pc, kc, N, B, rsb, csb, bp0);                           \
        ptrdiff_t nt = NN_NUM_THREADS(), id = NN_THREAD_NUM();                        \
        for (ptrdiff_t q = 0; q < n_panels; q++)                                      \
            NAME##_sweep(q, id * n_tiles / nt, (id + 1) * n_tiles / nt, pc, kc, M, N, \
                         A, rsa, csa, bp0 + q * 2 * V * NN_KC, C, accumulate || pc > 0); \
        NN_PRAGMA(omp barrier)                                                        \
    }                                                                                 \
}

#else /* not GCC/Clang: plain loops */

#define NN_DEFINE_GEMM(T, NAME)                                                       \
static void NAME(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const T *A, ptrdiff_t rsa,    \
                 ptrdiff_t csa, const T *B, ptrdiff_t rsb, ptrdiff_t csb, T *C,       \
                 int accumulate, T *pack)                                             \
{                                                                                     \
    (void)pack;                                                                       \
    for (ptrdiff_t i = 0; i < M; i++) {                                               \
        T *c = C + i * N;                                                             \
        if (!accumulate) for (ptrdiff_t j = 0; j < N; j++) c[j] = 0;                  \
        for (ptrdiff_t p = 0; p < K; p++) {                                           \
            T a = A[i * rsa + p * csa];                                               \
            for (ptrdiff_t j = 0; j < N; j++) c[j] += a * B[p * rsb + j * csb];       \
        }                                                                             \
    }                                                                                 \
}                                                                                     \
static void NAME##_dots(ptrdiff_t M, ptrdiff_t K, const T *A, ptrdiff_t rsa,          \
                        const T *b, T *C, int accumulate)                             \
{                                                                                     \
    for (ptrdiff_t i = 0; i < M; i++) {                                               \
        T s = 0;                                                                      \
        for (ptrdiff_t p = 0; p < K; p++) s += A[i * rsa + p] * b[p];                 \
        C[i] = accumulate ? C[i] + s : s;                                             \
    }                                                                                 \
}

#endif

NN_DEFINE_GEMM(float, nn_gemm_f)
NN_DEFINE_GEMM(double, nn_gemm_d)

/* ------------------------------------------------------------------------------ */
/* Column sums: out[j] (+)= sum_i D[i*N + j] (the bias gradient, D being M x N).   */
/* ------------------------------------------------------------------------------ */
/* Written out because the plain loop ``out[j] += D[i*N + j]`` keeps out[] in memory:
 * each row's add then waits for the previous row's store (a chain of store-to-load
 * forwards), which cost a tiny network more than its matrix products. Here the sums
 * stay in registers, two accumulators per column block (even and odd rows) to halve
 * the add-latency chain; the order of the additions is fixed, so results do not
 * depend on anything but the inputs. */
#if defined(__GNUC__)
#define NN_DEFINE_COLSUM(T, NAME, VEC)                                                \
static void NAME(ptrdiff_t M, ptrdiff_t N, const T *D, T *out, int accumulate)        \
{                                                                                     \
    typedef VEC##_v vec;   /* the vector types of the matrix multiply VEC */          \
    typedef VEC##_vu vecu;                                                            \
    enum { V = VEC##_V };                                                             \
    ptrdiff_t j = 0;                                                                  \
    if (N == 1) {                                                                     \
        /* One column: a contiguous sum, vectorized along the rows. */               \
        vec a0 = {0}, a1 = {0};                                                       \
        ptrdiff_t i = 0;                                                              \
        for (; i + 2 * V <= M; i += 2 * V) {                                          \
            a0 += *(const vecu *)(D + i);                                             \
            a1 += *(const vecu *)(D + i + V);                                         \
        }                                                                             \
        T s = VEC##_hsum(a0 + a1);                                                    \
        for (; i < M; i++) s += D[i];                                                 \
        out[0] = accumulate ? out[0] + s : s;                                         \
        return;                                                                       \
    }                                                                                 \
    for (; j + V <= N; j += V) {                                                      \
        vec a0 = {0}, a1 = {0};                                                       \
        ptrdiff_t i = 0;                                                              \
        for (; i + 1 < M; i += 2) {                                                   \
            a0 += *(const vecu *)(D + i * N + j);                                     \
            a1 += *(const vecu *)(D + (i + 1) * N + j);                               \
        }                                                                             \
        if (i < M) a0 += *(const vecu *)(D + i * N + j);                              \
        a0 += a1;                                                                     \
        if (accumulate) a0 += *(vecu *)(out + j);                                     \
        *(vecu *)(out + j) = a0;                                                      \
    }                                                                                 \
    for (; j < N; j++) {                                                              \
        T s0 = 0, s1 = 0;                                                             \
        ptrdiff_t i = 0;                                                              \
        for (; i + 1 < M; i += 2) {                                                   \
            s0 += D[i * N + j];                                                       \
            s1 += D[(i + 1) * N + j];                                                 \
        }                                                                             \
        if (i < M) s0 += D[i * N + j];                                                \
        s0 += s1;                                                                     \
        out[j] = accumulate ? out[j] + s0 : s0;                                       \
    }                                                                                 \
}
#else
#define NN_DEFINE_COLSUM(T, NAME, VEC)                                                \
static void NAME(ptrdiff_t M, ptrdiff_t N, const T *D, T *out, int accumulate)        \
{                                                                                     \
    for (ptrdiff_t j = 0; j < N; j++) {                                               \
        T s = 0;                                                                      \
        for (ptrdiff_t i = 0; i < M; i++) s += D[i * N + j];                          \
        out[j] = accumulate ? out[j] + s : s;                                         \
    }                                                                                 \
}
#endif

NN_DEFINE_COLSUM(float, nn_colsum_f, nn_gemm_f)
NN_DEFINE_COLSUM(double, nn_colsum_d, nn_gemm_d)

/* ------------------------------------------------------------------------------ */
/* Feature-major products for narrow networks: activations stored one row per unit */
/* (unit j's values for the batch's samples contiguous), so the vector lanes run   */
/* over samples and no product is narrower than the batch.                         */
/* ------------------------------------------------------------------------------ */
/* In the vector types of the matrix multiply VEC (NN_DEFINE_GEMM):
 * NAME##_lanes: C[m*N + n] = bias[m] (0 when bias is NULL) + sum_k A[m*rsa + k*csa]
 * B[k*N + n], for N a multiple of the vector's lanes (a batch padded to whole
 * vectors), up to 4 vectors of C's row held in registers at once.
 * NAME##_rowsums: out[m] = sum_n D[m*ldd + n] over the first N values of each row. */
/* Rows of C per register tile of NAME##_lanes (up to 4 vectors wide). */
#if NN_VBYTES == 64
#define NN_LANES_MR 4
#else
#define NN_LANES_MR 2
#endif
#if defined(__GNUC__)
#define NN_DEFINE_LANES(T, NAME, VEC)                                                 \
/* mr (<= NN_LANES_MR) rows of C over nv vectors of columns: mr x nv independent   \
   accumulators, each B vector loaded once for all the rows (one row at a time is a  \
   single chain of dependent multiply-adds). Both counts are constants where it is   \
   called, so the loops unroll into registers. */                                    \
static inline void NAME##_tile(const int nv, const int mr, ptrdiff_t N, ptrdiff_t K,  \
                               const T *A, ptrdiff_t rsa, ptrdiff_t csa,              \
                               const T *bias, const T *B, T *C)                       \
{                                                                                     \
    VEC##_v x[NN_LANES_MR][4];                                                        \
    for (int r = 0; r < mr; r++) {                                                    \
        T b0 = bias ? bias[r] : 0;                                                    \
        for (int u = 0; u < nv; u++) x[r][u] = (VEC##_v){0} + b0;                     \
    }                                                                                 \
    for (ptrdiff_t k = 0; k < K; k++) {                                               \
        VEC##_v bv[4];                                                                \
        for (int u = 0; u < nv; u++) bv[u] = *(const VEC##_vu *)(B + k * N + u * VEC##_V); \
        for (int r = 0; r < mr; r++) {                                                \
            T s = A[r * rsa + k * csa];                                               \
            for (int u = 0; u < nv; u++) x[r][u] += s * bv[u];                        \
        }                                                                             \
    }                                                                                 \
    for (int r = 0; r < mr; r++)                                                      \
        for (int u = 0; u < nv; u++)                                                  \
            *(VEC##_vu *)(C + r * N + u * VEC##_V) = x[r][u];                         \
}                                                                                     \
                                                                                      \
static inline void NAME##_rows(const int nv, ptrdiff_t M, ptrdiff_t N, ptrdiff_t K,   \
                               const T *A, ptrdiff_t rsa, ptrdiff_t csa,              \
                               const T *bias, const T *B, T *C)                       \
{                                                                                     \
    ptrdiff_t m = 0;                                                                  \
    for (; m + NN_LANES_MR <= M; m += NN_LANES_MR)                                    \
        NAME##_tile(nv, NN_LANES_MR, N, K, A + m * rsa, rsa, csa,                     \
                    bias ? bias + m : NULL, B, C + m * N);                            \
    for (; m < M; m++)                                                                \
        NAME##_tile(nv, 1, N, K, A + m * rsa, rsa, csa, bias ? bias + m : NULL, B,    \
                    C + m * N);                                                       \
}                                                                                     \
                                                                                      \
static void NAME##_lanes(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const T *A,            \
                         ptrdiff_t rsa, ptrdiff_t csa, const T *bias, const T *B, T *C) \
{                                                                                     \
    for (ptrdiff_t n0 = 0; n0 < N; n0 += 4 * VEC##_V) {                               \
        ptrdiff_t nv = (N - n0) / VEC##_V;                                            \
        /* A constant vector count per call, so each unrolls into registers. */      \
        if (nv >= 4) NAME##_rows(4, M, N, K, A, rsa, csa, bias, B + n0, C + n0);       \
        else if (nv == 3) NAME##_rows(3, M, N, K, A, rsa, csa, bias, B + n0, C + n0);  \
        else if (nv == 2) NAME##_rows(2, M, N, K, A, rsa, csa, bias, B + n0, C + n0);  \
        else NAME##_rows(1, M, N, K, A, rsa, csa, bias, B + n0, C + n0);               \
    }                                                                                 \
}                                                                                     \
                                                                                      \
static void NAME##_rowsums(ptrdiff_t M, ptrdiff_t N, const T *D, ptrdiff_t ldd, T *out) \
{                                                                                     \
    ptrdiff_t m0 = 0;                                                                 \
    if (NN_AVX512_HELPERS && sizeof(T) == 4)                                          \
        for (; m0 + 16 <= M; m0 += 16)                                                \
            nn_sums16_f(N, (const float *)(D + m0 * ldd), ldd, (float *)(out + m0));  \
    for (ptrdiff_t m = m0; m < M; m++) {                                              \
        const T *d = D + m * ldd;                                                     \
        VEC##_v x = {0};                                                              \
        ptrdiff_t n = 0;                                                              \
        for (; n + VEC##_V <= N; n += VEC##_V) x += *(const VEC##_vu *)(d + n);       \
        T s = VEC##_hsum(x);                                                          \
        for (; n < N; n++) s += d[n];                                                 \
        out[m] = s;                                                                   \
    }                                                                                 \
}
#else
#define NN_DEFINE_LANES(T, NAME, VEC)                                                 \
static void NAME##_lanes(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const T *A,            \
                         ptrdiff_t rsa, ptrdiff_t csa, const T *bias, const T *B, T *C) \
{                                                                                     \
    for (ptrdiff_t m = 0; m < M; m++)                                                 \
        for (ptrdiff_t n = 0; n < N; n++) {                                           \
            T s = bias ? bias[m] : 0;                                                 \
            for (ptrdiff_t k = 0; k < K; k++) s += A[m * rsa + k * csa] * B[k * N + n]; \
            C[m * N + n] = s;                                                         \
        }                                                                             \
}                                                                                     \
static void NAME##_rowsums(ptrdiff_t M, ptrdiff_t N, const T *D, ptrdiff_t ldd, T *out) \
{                                                                                     \
    for (ptrdiff_t m = 0; m < M; m++) {                                               \
        T s = 0;                                                                      \
        for (ptrdiff_t n = 0; n < N; n++) s += D[m * ldd + n];                        \
        out[m] = s;                                                                   \
    }                                                                                 \
}
#endif

NN_DEFINE_LANES(float, nn_f, nn_gemm_f)
NN_DEFINE_LANES(double, nn_d, nn_gemm_d)

/* Ask for the cache lines of p[0 .. nbytes) ahead of their use (into L2: reads of
 * rows scattered over a data set, gathered one batch later). A hint only. */
static inline void nn_prefetch_bytes(const void *p, ptrdiff_t nbytes)
{
#if defined(__GNUC__)
    uintptr_t line = (uintptr_t)p & ~(uintptr_t)63, end = (uintptr_t)p + nbytes;
    for (; line < end; line += 64) __builtin_prefetch((const void *)line, 0, 2);
#else
    (void)p; (void)nbytes;
#endif
}

/* Values the packing buffer of nn_gemm_* needs for an N-column product: each panel
 * is laid out at a stride of 2 vectors, so threads can pack them independently. */
#define NN_GEMM_PACK_SIZE(N) (NN_KC * ((N) + 2 * NN_MAX_LANES) + NN_MAX_LANES)

#endif /* NNCORE_SIMD_H */
