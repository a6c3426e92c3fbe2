/* sums_body.h: the bias gradients' sums for one element type: column sums of a
 * row-major delta (nn_colsums_*) and row sums of a feature-major one (nn_rowsums_*).
 *
 * A per-type body, no include guard: sums.h compiles it once per element type
 * (each_type.h).
 */

#if defined(__GNUC__)

/* out[j] (+)= sum_i D[i*N + j] for D of M x N. Written out because the plain loop
   ``out[j] += D[i*N + j]`` keeps out[] in memory: each row's add then waits for the
   previous row's store (a chain of store-to-load forwards), which cost a tiny network
   more than its matrix products. Here the sums stay in registers, two accumulators per
   column block (even and odd rows) to halve the add-latency chain; the order of the
   additions is fixed, so results do not depend on anything but the inputs. */
static void NN_NAME(nn_colsums)(ptrdiff_t M, ptrdiff_t N, const NN_T *D, NN_T *out,
                                int accumulate)
{
    ptrdiff_t j = 0;
    if (N == 1) {
        /* One column: a contiguous sum, vectorized along the rows. */
        NN_VEC a0 = {0}, a1 = {0};
        ptrdiff_t i = 0;
        for (; i + 2 * NN_V <= M; i += 2 * NN_V) {
            a0 += *(const NN_VECU *)(D + i);
            a1 += *(const NN_VECU *)(D + i + NN_V);
        }
        NN_T s = NN_NAME(nn_hsum)(a0 + a1);
        for (; i < M; i++) s += D[i];
        out[0] = accumulate ? out[0] + s : s;
        return;
    }
    for (; j + NN_V <= N; j += NN_V) {
        NN_VEC a0 = {0}, a1 = {0};
        ptrdiff_t i = 0;
        for (; i + 1 < M; i += 2) {
            a0 += *(const NN_VECU *)(D + i * N + j);
            a1 += *(const NN_VECU *)(D + (i + 1) * N + j);
        }
        if (i < M) a0 += *(const NN_VECU *)(D + i * N + j);
        a0 += a1;
        if (accumulate) a0 += *(NN_VECU *)(out + j);
        *(NN_VECU *)(out + j) = a0;
    }
    for (; j < N; j++) {
        NN_T s0 = 0, s1 = 0;
        ptrdiff_t i = 0;
        for (; i + 1 < M; i += 2) {
            s0 += D[i * N + j];
            s1 += D[(i + 1) * N + j];
        }
        if (i < M) s0 += D[i * N + j];
        s0 += s1;
        out[j] = accumulate ? out[j] + s0 : s0;
    }
}

/* out[m] = sum_n D[m*ldd + n] over the first N values of each of M rows: a vector of
   partial sums per row, summed across its lanes at the end (sixteen rows at once on
   AVX-512 floats). */
static void NN_NAME(nn_rowsums)(ptrdiff_t M, ptrdiff_t N, const NN_T *D, ptrdiff_t ldd,
                                NN_T *out)
{
    ptrdiff_t m0 = 0;
    if (NN_AVX512_HELPERS && sizeof(NN_T) == 4)
        for (; m0 + 16 <= M; m0 += 16)
            nn_sums16_f32(N, (const float *)(D + m0 * ldd), ldd, (float *)(out + m0));
    for (ptrdiff_t m = m0; m < M; m++) {
        const NN_T *d = D + m * ldd;
        NN_VEC x = {0};
        ptrdiff_t n = 0;
        for (; n + NN_V <= N; n += NN_V) x += *(const NN_VECU *)(d + n);
        NN_T s = NN_NAME(nn_hsum)(x);
        for (; n < N; n++) s += d[n];
        out[m] = s;
    }
}

#else /* not GCC/Clang: plain loops */

static void NN_NAME(nn_colsums)(ptrdiff_t M, ptrdiff_t N, const NN_T *D, NN_T *out,
                                int accumulate)
{
    for (ptrdiff_t j = 0; j < N; j++) {
        NN_T s = 0;
        for (ptrdiff_t i = 0; i < M; i++) s += D[i * N + j];
        out[j] = accumulate ? out[j] + s : s;
    }
}

static void NN_NAME(nn_rowsums)(ptrdiff_t M, ptrdiff_t N, const NN_T *D, ptrdiff_t ldd,
                                NN_T *out)
{
    for (ptrdiff_t m = 0; m < M; m++) {
        NN_T s = 0;
        for (ptrdiff_t n = 0; n < N; n++) s += D[m * ldd + n];
        out[m] = s;
    }
}

#endif
