/* config.h: the compile-time configuration every other header of nncore/csrc reads.
 *
 * Holds: the vector width of the instruction set this translation unit is compiled
 * for (NN_VBYTES, NN_MAX_LANES), the register-tile and k-block sizes of the matrix
 * products (NN_MR, NN_FM_MR, NN_KC, NN_KBLOCK), the size cut-overs (NN_DIRECT_MAX,
 * NN_BLAS_ABOVE, NN_PARALLEL_ABOVE), the OpenMP shims (NN_PRAGMA, NN_THREAD_NUM; the
 * team sizes are in threads.h), NN_HOT_INLINE, and the name-building macro of the
 * per-type bodies (NN_NAME).
 *
 * Naming in nncore/csrc: every function or type that exists once per element type
 * ends in the dtype's affix, _f32 or _f64 (nn_gemm_f32, nn_tanh_f64); "fm" names the
 * feature-major layout (one row per unit, the batch along the row); the operands of a
 * product are A, B and C, with C = op(A) op(B) of M x N and K terms per sum.
 *
 * The kernels are written with GCC/Clang vector extensions, so one source serves every
 * instruction set: the vector width follows the flags the including module is compiled
 * with (SSE2, AVX2 or AVX-512; see setup.py). Other compilers get plain loops. Nothing
 * in these headers allocates, takes locks or touches Python.
 */
#ifndef NNCORE_CSRC_CONFIG_H
#define NNCORE_CSRC_CONFIG_H

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

/* The most lanes a vector has (AVX-512 floats); sizes the packing buffer and the
 * feature-major row padding. */
#define NN_MAX_LANES 16

/* Rows of C per register tile of the GEMM: enough independent accumulators to hide
 * the FMA latency, few enough to stay in the vector register file (32 on AVX-512, 16
 * else). */
#if NN_VBYTES == 64
#define NN_MR 8
#elif NN_VBYTES == 32
#define NN_MR 6
#else
#define NN_MR 4
#endif

/* Rows of C per register tile of the feature-major product (up to 4 vectors wide). */
#if NN_VBYTES == 64
#define NN_FM_MR 4
#else
#define NN_FM_MR 2
#endif

/* K is split into blocks of at most NN_KC so that a packed panel of B (NN_KC x 2
 * vectors) stays in the L1 cache while the rows of A stream past it. The k-blocking
 * fixes the order of every sum (each block is summed in registers, then added to C),
 * so it is part of the results: it must not change from one machine to another. */
#define NN_KC 256
/* The K blocks actually used: K split evenly into as few blocks of at most NN_KC as
 * will do (784 = 4 x 196, not 3 x 256 + 16: a short last block pays a full round of
 * loading and storing C for a few multiply-adds). */
#define NN_KBLOCK(K) ((K) < 1 ? 1 : ((K) + ((K) + NN_KC - 1) / NN_KC - 1) / (((K) + NN_KC - 1) / NN_KC))

/* Products whose A holds at most this many values, and whose C is at most one vector
 * wide, run row by row without packing (nn_gemm_direct_*; AVX-512 builds). */
#define NN_DIRECT_MAX 512

/* Products with more multiply-adds than this go to BLAS (measured by
 * benches/tune_gemm.py: the AVX-512 kernel outruns OpenBLAS on one core at every size
 * tried, the AVX2 one matches it up to about this size, and the SSE2 one only beats it
 * on products too small to amortize BLAS's overhead). */
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
#define NN_THREAD_NUM() omp_get_thread_num()
#else
#define NN_PRAGMA(x)
#define NN_THREAD_NUM() 0
#endif

/* For the register tiles and the loops around them: inlined where they are called,
 * whatever the compiler's size heuristics decide for the function around them (the
 * tiles of a small product then run without a call each, and with its constants). */
#if defined(__GNUC__)
#define NN_HOT_INLINE static inline __attribute__((always_inline))
#else
#define NN_HOT_INLINE static inline
#endif

/* NN_NAME(nn_gemm) is nn_gemm_f32 or nn_gemm_f64 inside a per-type body (gemm_body.h,
 * fm_body.h), which its including header compiles once per type with NN_T the element
 * type and NN_SUFFIX its affix (f32 or f64). */
#define NN_CAT_(a, b) a##_##b
#define NN_CAT(a, b) NN_CAT_(a, b)
#define NN_NAME(x) NN_CAT(x, NN_SUFFIX)

#endif /* NNCORE_CSRC_CONFIG_H */
