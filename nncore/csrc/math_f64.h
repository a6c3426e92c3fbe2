/* math_f64.h: float64 tanh, sigmoid, expm1, exp, log1p and softplus at libm's
 * accuracy, inline and branch-free.
 *
 * Holds nn_tanh_f64, nn_expm1_neg_f64 (y <= 0), nn_exp_neg_f64 (y <= 0),
 * nn_log1p_unit_f64 (0 <= u <= 1), nn_softplus_f64, nn_sigmoid_f64, and the array
 * forms nn_tanh_array_f64 and nn_sigmoid_array_f64. A call to libm is a call per
 * value, which dominated the training step of a small float64 network; these loops
 * vectorize. The float32 elu and softplus use them too (in double, then rounded).
 */
#ifndef NNCORE_CSRC_MATH_F64_H
#define NNCORE_CSRC_MATH_F64_H

#include "config.h"
#include "vec.h"

/* For |x| >= 0.35, tanh|x| = e / (e + 2) with e = expm1(2|x|), the form of the
 * classic libm (fdlibm, glibc) tanh, with 2|x| clamped to 44 (where e / (e + 2)
 * already rounds to 1) and expm1 by its own reduction and polynomial; below, where
 * that quotient's roundings would cost up to 2.6 ulp, the odd Taylor polynomial
 * through x^27 (truncation error below 5e-19 relative). Then the sign is put back.
 * No branches, so a loop of it vectorizes (libm's tanh is a function call per
 * value). */
/* The reduction of e^y: y = k ln2 + r, |r| <= ln2 / 2 (ln 2 in two parts, so that
 * k * NN_LN2_HI is exact for |k| < 2^21), k in t's low bits (1.5 * 2^52 added);
 * e = expm1(r) = r + r^2 (1/2! + r/3! + ... + r^11/13!) (truncation error below
 * 1.2e-17 relative, a tenth of an ulp); p starts as 1/13!. For -40 <= y <= 44,
 * expm1(y) = 2^k e + (2^k - 1), both terms exact but the last rounding
 * (nn_tanh_f64, nn_expm1_neg_f64); for y <= 0, e^y = (1 + e) 2^k (nn_exp_neg_f64:
 * sigmoid, softplus). */
#define NN_LN2_HI 6.93147180369123816490e-01
#define NN_LN2_LO 1.90821492927058770002e-10
#define NN_EXPM1_REDUCED_F64(y, t, k, r, p, e)                                         \
    t = (y) * 1.44269504088896340736 + 6755399441055744.0; /* 1.5 * 2^52 */            \
    k = t - 6755399441055744.0;                                                        \
    r = ((y) - k * NN_LN2_HI) - k * NN_LN2_LO;                                         \
    p = p * r + 1.0 / 479001600;   /* 1/12! */                                         \
    p = p * r + 1.0 / 39916800;                                                        \
    p = p * r + 1.0 / 3628800;                                                         \
    p = p * r + 1.0 / 362880;                                                          \
    p = p * r + 1.0 / 40320;                                                           \
    p = p * r + 1.0 / 5040;                                                            \
    p = p * r + 1.0 / 720;                                                             \
    p = p * r + 1.0 / 120;                                                             \
    p = p * r + 1.0 / 24;                                                              \
    p = p * r + 1.0 / 6;                                                               \
    p = p * r + 0.5;                                                                   \
    e = r + r * r * p              /* expm1(r) */

/* small = tanh(a) for 0 <= a < 0.35, s = a * a: a + a s P(s), P's coefficients those
 * of tanh's Taylor series (2^2n (2^2n - 1) B_2n / (2n)!); p starts as x^27's. */
#define NN_TANH_SMALL_F64(small, a, s, p)                                              \
    p = p * (s) + 58870668456604.0 / 3698160658676859375.0;                            \
    p = p * (s) - 113927491862.0 / 2900518163668125.0;                                 \
    p = p * (s) + 18888466084.0 / 194896477400625.0;                                   \
    p = p * (s) - 443861162.0 / 1856156927625.0;                                       \
    p = p * (s) + 6404582.0 / 10854718875.0;                                           \
    p = p * (s) - 929569.0 / 638512875.0;                                              \
    p = p * (s) + 21844.0 / 6081075.0;                                                 \
    p = p * (s) - 1382.0 / 155925.0;                                                   \
    p = p * (s) + 62.0 / 2835.0;                                                       \
    p = p * (s) - 17.0 / 315.0;                                                        \
    p = p * (s) + 2.0 / 15.0;                                                          \
    p = p * (s) - 1.0 / 3.0;                                                           \
    small = (a) + (a) * (s) * p
#define NN_TANH_SMALL_F64_START (-8374643517010684.0 / 1298054391195577640625.0)

/* k, the integer in t's low bits (NN_EXPM1_REDUCED_F64). */
static inline int64_t nn_exp_k_f64(double t)
{
    int64_t bits;
    memcpy(&bits, &t, 8);
    return bits - 0x4338000000000000LL;
}

/* 2^k for -1022 <= k <= 1023. */
static inline double nn_pow2_f64(int64_t k)
{
    int64_t bits = (k + 1023) << 52;
    double scale;
    memcpy(&scale, &bits, 8);
    return scale;
}

static inline double nn_tanh_f64(double x)
{
    double a = fabs(x), s = a * a, q = NN_TANH_SMALL_F64_START, small;
    NN_TANH_SMALL_F64(small, a, s, q);
    double y = 44.0 < 2.0 * a ? 44.0 : 2.0 * a;    /* (a NaN stays NaN) */
    double t, k, r, p = 1.0 / 6227020800, e;        /* 1/13! */
    NN_EXPM1_REDUCED_F64(y, t, k, r, p, e);
    double scale = nn_pow2_f64(nn_exp_k_f64(t));
    e = e * scale + (scale - 1.0);                  /* expm1(y) */
    double big = e / (e + 2.0);
    return copysign(a >= 0.35 ? big : small, x);    /* (a NaN takes ``small``) */
}

/* expm1(y) for y <= 0 (the ELU's negative side; y > 0 is taken as 0): y clamped at
 * -40, where expm1 already rounds to -1; then 2^k expm1(r) + (2^k - 1) as in
 * nn_tanh_f64, exact but the last rounding for k >= -53. Within 1.2 ulp of expm1
 * (glibc's: 0.8); a float32 argument's, rounded to float32, within half an ulp.
 * Branch-free and inline, so that a loop of it vectorizes. */
static inline double nn_expm1_neg_f64(double y)
{
    y = y > 0.0 ? 0.0 : y;
    y = y < -40.0 ? -40.0 : y;                      /* (a NaN stays NaN) */
    double t, k, r, p = 1.0 / 6227020800, e;
    NN_EXPM1_REDUCED_F64(y, t, k, r, p, e);
    double scale = nn_pow2_f64(nn_exp_k_f64(t));
    e = e * scale + (scale - 1.0);
    return y == 0.0 ? y : e;                        /* (expm1(-0) is -0) */
}

/* e^y for y <= 0 (y clamped at -746, where it is already 0): (1 + expm1(r)) 2^k, 2^k
 * applied in two halves so that neither leaves the normal range before the result
 * does (subnormal results come out right). */
static inline double nn_exp_neg_f64(double y)
{
    y = y < -746.0 ? -746.0 : y;                    /* (a NaN stays NaN) */
    double t, k, r, p = 1.0 / 6227020800, e;
    NN_EXPM1_REDUCED_F64(y, t, k, r, p, e);
    int64_t k0 = nn_exp_k_f64(t), k1 = k0 >> 1;
    return ((1.0 + e) * nn_pow2_f64(k1)) * nn_pow2_f64(k0 - k1);
}

/* log1p(u) for 0 <= u <= 1: w = 1 + u, rounded, and c = u - (w - 1), its rounding
 * error (exact); log(w) = k ln2 + log(1 + f), k = 1 and m = w / 2 above sqrt(2), and
 * log(1 + f) = f - (f^2/2 - s (f^2/2 + R(s^2))), s = f / (2 + f) (fdlibm's form: the
 * leading terms f - f^2/2 carry no rounding of s), R by the series of 2 atanh(s) / s - 2
 * to s^24 (truncation below 1e-17 relative); log1p(u) = log(w) + c / w. */
static inline double nn_log1p_unit_f64(double u)
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
static inline double nn_softplus_f64(double z)
{
    return (z > 0.0 ? z : 0.0) + nn_log1p_unit_f64(nn_exp_neg_f64(-fabs(z)));
}

/* 1 / (1 + e^-z) for z >= 0, e^z / (1 + e^z) below: libm's formulas (the float64 path
 * of sigmoid in _activations.pxi), with e^-|z| by nn_exp_neg_f64. */
static inline double nn_sigmoid_f64(double z)
{
    double e = nn_exp_neg_f64(-fabs(z));
    return (z >= 0 ? 1.0 : e) / (1.0 + e);
}

#if defined(__GNUC__) && (defined(__AVX512F__) || defined(__AVX__) || defined(__SSE2__))
/* nn_pow2_f64 of a vector of k. */
#define NN_POW2_VEC_F64(k) ((nn_v_f64)(((k) + 1023) << 52))
/* a[i] = nn_tanh_f64(z[i]) for i < n, whole vectors at a time: the same operations in
 * the same order (so the same results), with |x|, the sign, the clamp and the select
 * as bit operations and compares. */
static inline void nn_tanh_array_f64(ptrdiff_t n, const double *z, double *a)
{
    const ptrdiff_t V = nn_lanes_f64;
    ptrdiff_t i = 0;
    for (; i + V <= n; i += V) {
        nn_v_f64 x = *(const nn_vu_f64 *)(z + i);
        nn_vi_f64 sign = (nn_vi_f64)x & (int64_t)0x8000000000000000ULL;
        nn_v_f64 ax = (nn_v_f64)((nn_vi_f64)x & (int64_t)0x7fffffffffffffffLL);
        nn_v_f64 s = ax * ax, q = (nn_v_f64){0} + NN_TANH_SMALL_F64_START, small;
        NN_TANH_SMALL_F64(small, ax, s, q);
        nn_v_f64 y = 2.0 * ax;
        nn_vi_f64 clamp = (nn_v_f64){0} + 44.0 < y;
        y = (nn_v_f64)NN_SELECT_BITS(nn_vi_f64, clamp, (nn_v_f64){0} + 44.0, y);
        nn_v_f64 t, k, r, p = (nn_v_f64){0} + 1.0 / 6227020800, e;
        NN_EXPM1_REDUCED_F64(y, t, k, r, p, e);
        nn_v_f64 scale = NN_POW2_VEC_F64((nn_vi_f64)t - 0x4338000000000000LL);
        e = e * scale + (scale - 1.0);
        nn_v_f64 big = e / (e + 2.0);
        nn_vi_f64 use_big = ax >= 0.35;
        nn_vi_f64 mag = NN_SELECT_BITS(nn_vi_f64, use_big, big, small);
        *(nn_vu_f64 *)(a + i) = (nn_v_f64)(mag | sign);
    }
    for (; i < n; i++) a[i] = nn_tanh_f64(z[i]);
}
/* a[i] = nn_sigmoid_f64(z[i]) for i < n, whole vectors at a time, as
 * nn_tanh_array_f64. */
static inline void nn_sigmoid_array_f64(ptrdiff_t n, const double *z, double *a)
{
    const ptrdiff_t V = nn_lanes_f64;
    ptrdiff_t i = 0;
    for (; i + V <= n; i += V) {
        nn_v_f64 x = *(const nn_vu_f64 *)(z + i);
        nn_v_f64 y = (nn_v_f64)((nn_vi_f64)x | (int64_t)0x8000000000000000ULL);   /* -|x| */
        nn_vi_f64 clamp = y < -746.0;
        y = (nn_v_f64)NN_SELECT_BITS(nn_vi_f64, clamp, (nn_v_f64){0} - 746.0, y);
        nn_v_f64 t, k, r, p = (nn_v_f64){0} + 1.0 / 6227020800, e;
        NN_EXPM1_REDUCED_F64(y, t, k, r, p, e);
        nn_vi_f64 k0 = (nn_vi_f64)t - 0x4338000000000000LL, k1 = k0 >> 1;
        e = ((1.0 + e) * NN_POW2_VEC_F64(k1)) * NN_POW2_VEC_F64(k0 - k1);
        nn_vi_f64 positive = x >= 0.0;
        nn_v_f64 num = (nn_v_f64)NN_SELECT_BITS(nn_vi_f64, positive, (nn_v_f64){0} + 1.0, e);
        *(nn_vu_f64 *)(a + i) = num / (1.0 + e);
    }
    for (; i < n; i++) a[i] = nn_sigmoid_f64(z[i]);
}
#else
static inline void nn_tanh_array_f64(ptrdiff_t n, const double *z, double *a)
{
    for (ptrdiff_t i = 0; i < n; i++) a[i] = nn_tanh_f64(z[i]);
}
static inline void nn_sigmoid_array_f64(ptrdiff_t n, const double *z, double *a)
{
    for (ptrdiff_t i = 0; i < n; i++) a[i] = nn_sigmoid_f64(z[i]);
}
#endif

#endif /* NNCORE_CSRC_MATH_F64_H */
