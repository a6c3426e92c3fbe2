/* vec_body.h: the lane sum and the partial store of one element type's vectors.
 *
 * A per-type body, no include guard: vec.h compiles it once per element type
 * (each_type.h), defining nn_hsum_f32 / nn_hsum_f64 and nn_store_f32 / nn_store_f64.
 */

/* The sum of x's lanes, lane 0 first (a fixed order, so results depend on nothing
   but the inputs). */
static inline NN_T NN_NAME(nn_hsum)(NN_VEC x)
{
    NN_T lanes[NN_V], s = 0;
    memcpy(lanes, &x, sizeof(x));
    for (int u = 0; u < NN_V; u++) s += lanes[u];
    return s;
}

/* Store ``n`` (<= NN_V) lanes of x at c, adding to what is there if ``accumulate``. */
static inline void NN_NAME(nn_store)(NN_T *c, NN_VEC x, ptrdiff_t n, int accumulate)
{
    if (n == NN_V) {
        if (accumulate) x += *(NN_VECU *)c;
        *(NN_VECU *)c = x;
    } else if (NN_AVX512_HELPERS) {
        /* A narrow C (an output layer of 10 classes): masked lanes, which neither
           touch the memory past the row's end nor cost a store per value. */
        NN_NAME(nn_store_masked)(c, &x, n, accumulate);
    } else {
        NN_T lanes[NN_V];
        memcpy(lanes, &x, sizeof(x));
        for (ptrdiff_t u = 0; u < n; u++) c[u] = accumulate ? c[u] + lanes[u] : lanes[u];
    }
}
