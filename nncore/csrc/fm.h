/* fm.h: the product of the feature-major layout, in float32 and float64
 * (nn_fm_product_f32, nn_fm_product_f64).
 *
 * Feature-major: activations stored one row per unit (unit j's values for the
 * batch's samples contiguous, the batch padded to whole vectors), so the vector lanes
 * run over samples and no product is narrower than the batch. For narrow networks,
 * whose row-major products would fill a fraction of each vector. The code is in
 * fm_body.h, compiled here once per element type.
 */
#ifndef NNCORE_CSRC_FM_H
#define NNCORE_CSRC_FM_H

#include "config.h"
#include "vec.h"

#define NN_BODY "fm_body.h"
#include "each_type.h"

#endif /* NNCORE_CSRC_FM_H */
