/* gemm.h: the kernels' own matrix product, C (M x N) = or += op(A) op(B), in float32
 * and float64 (nn_gemm_f32, nn_gemm_f64), and the dot products it shares with the
 * feature-major pass (nn_dots_f32, nn_dots_f64).
 *
 * The code is in gemm_body.h (the inner loops) and gemm_units_body.h (the split of a
 * product into units of work, and the threads that run them), compiled here once per
 * element type. Callers give nn_gemm_* a scratch buffer of NN_GEMM_PACK_SIZE(N) values
 * for the packed panels of B and row blocks of A.
 */
#ifndef NNCORE_CSRC_GEMM_H
#define NNCORE_CSRC_GEMM_H

#include "config.h"
#include "avx512.h"
#include "blocking.h"
#include "threads.h"
#include "vec.h"

/* Values the packing buffer of nn_gemm_* needs for an N-column product: B's panels,
 * each at a stride of 2 vectors so that threads can pack them independently, then as
 * many values again for a block of A's rows. */
#define NN_GEMM_PACK_SIZE(N) (2 * NN_KC * ((N) + 2 * NN_MAX_LANES) + NN_MAX_LANES)

#define NN_BODY "gemm_body.h"
#include "each_type.h"
#define NN_BODY "gemm_units_body.h"
#include "each_type.h"

#endif /* NNCORE_CSRC_GEMM_H */
