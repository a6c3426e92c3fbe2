/* sums.h: the bias gradients' sums, in float32 and float64: column sums of a
 * row-major delta (nn_colsums_f32, nn_colsums_f64) and row sums of a feature-major
 * one (nn_rowsums_f32, nn_rowsums_f64).
 *
 * The code is in sums_body.h, compiled here once per element type.
 */
#ifndef NNCORE_CSRC_SUMS_H
#define NNCORE_CSRC_SUMS_H

#include "config.h"
#include "avx512.h"
#include "vec.h"

#define NN_BODY "sums_body.h"
#include "each_type.h"

#endif /* NNCORE_CSRC_SUMS_H */
