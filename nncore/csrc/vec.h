/* vec.h: the vector types of the GCC/Clang builds and what every kernel does with
 * whole vectors.
 *
 * Holds, per element type (affix _f32 or _f64): nn_v_* (a vector of NN_VBYTES,
 * aligned), nn_vu_* (the same type for memory that may lie anywhere: loads and stores
 * through a pointer to it are unaligned and may alias), nn_vi_* (integer lanes of the
 * same width, for bit operations) and nn_lanes_* (lanes per vector); NN_SELECT_BITS;
 * and, from vec_body.h, the lane sum nn_hsum_* and the partial store nn_store_*.
 * Inside a per-type body NN_VEC, NN_VECU and NN_V name that type's vector, unaligned
 * vector and lane count. Other compilers get none of this (their kernels are plain
 * loops).
 */
#ifndef NNCORE_CSRC_VEC_H
#define NNCORE_CSRC_VEC_H

#include "config.h"
#include "avx512.h"

#if defined(__GNUC__)
typedef float nn_v_f32 __attribute__((vector_size(NN_VBYTES)));
typedef float nn_vu_f32 __attribute__((vector_size(NN_VBYTES), aligned(4), may_alias));
typedef int32_t nn_vi_f32 __attribute__((vector_size(NN_VBYTES)));
typedef double nn_v_f64 __attribute__((vector_size(NN_VBYTES)));
typedef double nn_vu_f64 __attribute__((vector_size(NN_VBYTES), aligned(8), may_alias));
typedef int64_t nn_vi_f64 __attribute__((vector_size(NN_VBYTES)));
enum { nn_lanes_f32 = NN_VBYTES / 4, nn_lanes_f64 = NN_VBYTES / 8 };

#define NN_VEC NN_NAME(nn_v)
#define NN_VECU NN_NAME(nn_vu)
#define NN_V NN_NAME(nn_lanes)

/* Lanes of a where the integer-vector mask is set, of b elsewhere, as integer vector
 * type I (bit operations, where a C ?: on vectors is not available). */
#define NN_SELECT_BITS(I, mask, a, b) (((mask) & (I)(a)) | (~(mask) & (I)(b)))

#define NN_BODY "vec_body.h"
#include "each_type.h"
#endif

#endif /* NNCORE_CSRC_VEC_H */
