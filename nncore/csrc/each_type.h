/* each_type.h: compiles the per-type body named by NN_BODY once per element type.
 *
 * No include guard: a header that defines per-type kernels writes
 *     #define NN_BODY "gemm_body.h"
 *     #include "each_type.h"
 * and gets the body compiled with NN_T float and NN_SUFFIX f32 (so NN_NAME(nn_gemm) is
 * nn_gemm_f32), then with NN_T double and NN_SUFFIX f64. NN_BODY is undefined after.
 */
#define NN_T float
#define NN_SUFFIX f32
#include NN_BODY
#undef NN_T
#undef NN_SUFFIX

#define NN_T double
#define NN_SUFFIX f64
#include NN_BODY
#undef NN_T
#undef NN_SUFFIX

#undef NN_BODY
