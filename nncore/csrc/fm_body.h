/* fm_body.h: the feature-major product for one element type.
 *
 * A per-type body, no include guard: fm.h compiles it once per element type
 * (each_type.h). Defines nn_fm_product_* and its register
 * tiles (nn_fm_tile_*, nn_fm_rows_*).
 */

#if defined(__GNUC__)

/* mr (<= NN_FM_MR) rows of C over nv vectors of columns: mr x nv independent
   accumulators, each B vector loaded once for all the rows (one row at a time is a
   single chain of dependent multiply-adds). Both counts are constants where it is
   called, so the loops unroll into registers. */
static inline void NN_NAME(nn_fm_tile)(const int nv, const int mr, ptrdiff_t N,
                                       ptrdiff_t K, const NN_T *A, ptrdiff_t rsa,
                                       ptrdiff_t csa, const NN_T *bias, const NN_T *B,
                                       NN_T *C)
{
    NN_VEC x[NN_FM_MR][4];
    for (int r = 0; r < mr; r++) {
        NN_T b0 = bias ? bias[r] : 0;
        for (int u = 0; u < nv; u++) x[r][u] = (NN_VEC){0} + b0;
    }
    for (ptrdiff_t k = 0; k < K; k++) {
        NN_VEC bv[4];
        for (int u = 0; u < nv; u++) bv[u] = *(const NN_VECU *)(B + k * N + u * NN_V);
        for (int r = 0; r < mr; r++) {
            NN_T s = A[r * rsa + k * csa];
            for (int u = 0; u < nv; u++) x[r][u] += s * bv[u];
        }
    }
    for (int r = 0; r < mr; r++)
        for (int u = 0; u < nv; u++)
            *(NN_VECU *)(C + r * N + u * NN_V) = x[r][u];
}

/* All M rows of C over nv vectors of columns, NN_FM_MR rows at a time. */
static inline void NN_NAME(nn_fm_rows)(const int nv, ptrdiff_t M, ptrdiff_t N,
                                       ptrdiff_t K, const NN_T *A, ptrdiff_t rsa,
                                       ptrdiff_t csa, const NN_T *bias, const NN_T *B,
                                       NN_T *C)
{
    ptrdiff_t m = 0;
    for (; m + NN_FM_MR <= M; m += NN_FM_MR)
        NN_NAME(nn_fm_tile)(nv, NN_FM_MR, N, K, A + m * rsa, rsa, csa,
                            bias ? bias + m : NULL, B, C + m * N);
    for (; m < M; m++)
        NN_NAME(nn_fm_tile)(nv, 1, N, K, A + m * rsa, rsa, csa, bias ? bias + m : NULL,
                            B, C + m * N);
}

/* C[m*N + n] = bias[m] (0 when bias is NULL) + sum_k A[m*rsa + k*csa] B[k*N + n], for
   N a multiple of the vector's lanes (a batch padded to whole vectors), up to 4
   vectors of C's row held in registers at once. */
static void NN_NAME(nn_fm_product)(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const NN_T *A,
                                   ptrdiff_t rsa, ptrdiff_t csa, const NN_T *bias,
                                   const NN_T *B, NN_T *C)
{
    for (ptrdiff_t n0 = 0; n0 < N; n0 += 4 * NN_V) {
        ptrdiff_t nv = (N - n0) / NN_V;
        /* A constant vector count per call, so each unrolls into registers. */
        const NN_T *b = B + n0;
        NN_T *c = C + n0;
        if (nv >= 4) NN_NAME(nn_fm_rows)(4, M, N, K, A, rsa, csa, bias, b, c);
        else if (nv == 3) NN_NAME(nn_fm_rows)(3, M, N, K, A, rsa, csa, bias, b, c);
        else if (nv == 2) NN_NAME(nn_fm_rows)(2, M, N, K, A, rsa, csa, bias, b, c);
        else NN_NAME(nn_fm_rows)(1, M, N, K, A, rsa, csa, bias, b, c);
    }
}

#else /* not GCC/Clang: plain loops */

static void NN_NAME(nn_fm_product)(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const NN_T *A,
                                   ptrdiff_t rsa, ptrdiff_t csa, const NN_T *bias,
                                   const NN_T *B, NN_T *C)
{
    for (ptrdiff_t m = 0; m < M; m++)
        for (ptrdiff_t n = 0; n < N; n++) {
            NN_T s = bias ? bias[m] : 0;
            for (ptrdiff_t k = 0; k < K; k++) s += A[m * rsa + k * csa] * B[k * N + n];
            C[m * N + n] = s;
        }
}

#endif
