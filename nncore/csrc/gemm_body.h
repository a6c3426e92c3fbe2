/* gemm_body.h: the inner loops of the matrix product C (M x N, row-major, leading
 * dimension N) = or += op(A) op(B) for one element type, and the dot products it
 * shares with the feature-major pass.
 *
 * A per-type body, no include guard: gemm.h compiles it once per element type
 * (each_type.h), so a debugger, a profile or a compiler message points at the lines
 * below. Defines nn_dots_* and the parts of nn_gemm_* (gemm_units_body.h): the
 * register tiles (nn_gemm_tile1_*, _tile2_), the packing of B's panels and of A's row
 * blocks (nn_gemm_pack_*, _pack_a_), a sweep of tiles under a panel (_sweep_), the
 * direct loop of tiny products (_direct_) and the one-row product (_row_).
 *
 * Element (i, p) of op(A) is A[i*rsa + p*csa]; element (p, j) of op(B) is
 * B[p*rsb + j*csb]: so either operand may be stored transposed. For each block of
 * NN_KBLOCK(K) values of p, B's block is packed into panels of 2 vectors' width (1
 * vector for a narrow last panel), zero-padded, contiguous; then each panel is swept
 * by register tiles of NN_MR rows of C. Rows of A are read in place as scalars and
 * broadcast. Each element of C is the sum over each k-block in order of p, added to
 * C block after block: nothing else (thread count, tile shape) changes the order.
 */

#if defined(__GNUC__)

/* Tile of ``rows`` (<= NN_MR) x ``cols`` (<= 2V) of C from a 2-vector panel. */
NN_HOT_INLINE void NN_NAME(nn_gemm_tile2)(ptrdiff_t kc, const NN_T *a, ptrdiff_t rsa,
                                          ptrdiff_t csa, ptrdiff_t rows, const NN_T *bp,
                                          NN_T *c, ptrdiff_t ldc, ptrdiff_t cols,
                                          int accumulate)
{
    NN_VEC x0[NN_MR], x1[NN_MR];
    const NN_T *ar[NN_MR];
    for (int r = 0; r < NN_MR; r++) {
        x0[r] = (NN_VEC){0};
        x1[r] = (NN_VEC){0};
        ar[r] = a + (r < rows ? r : 0) * rsa; /* spare rows repeat row 0 */
    }
    for (ptrdiff_t p = 0; p < kc; p++) {
        NN_VEC b0 = *(const NN_VEC *)(bp + p * 2 * NN_V);
        NN_VEC b1 = *(const NN_VEC *)(bp + p * 2 * NN_V + NN_V);
        for (int r = 0; r < NN_MR; r++) {
            NN_T s = ar[r][p * csa];
            x0[r] += s * b0;
            x1[r] += s * b1;
        }
    }
    ptrdiff_t c0 = cols < NN_V ? cols : NN_V;
    for (int r = 0; r < NN_MR; r++) {
        if (r < rows) {
            NN_NAME(nn_store)(c + r * ldc, x0[r], c0, accumulate);
            if (cols > NN_V)
                NN_NAME(nn_store)(c + r * ldc + NN_V, x1[r], cols - NN_V, accumulate);
        }
    }
}

/* Tile of ``rows`` x ``cols`` (<= V) of C from a 1-vector panel. */
NN_HOT_INLINE void NN_NAME(nn_gemm_tile1)(ptrdiff_t kc, const NN_T *a, ptrdiff_t rsa,
                                          ptrdiff_t csa, ptrdiff_t rows, const NN_T *bp,
                                          NN_T *c, ptrdiff_t ldc, ptrdiff_t cols,
                                          int accumulate)
{
    NN_VEC x0[NN_MR];
    const NN_T *ar[NN_MR];
    for (int r = 0; r < NN_MR; r++) {
        x0[r] = (NN_VEC){0};
        ar[r] = a + (r < rows ? r : 0) * rsa;
    }
    for (ptrdiff_t p = 0; p < kc; p++) {
        NN_VEC b0 = *(const NN_VEC *)(bp + p * NN_V);
        for (int r = 0; r < NN_MR; r++) x0[r] += ar[r][p * csa] * b0;
    }
    for (int r = 0; r < NN_MR; r++)
        if (r < rows) NN_NAME(nn_store)(c + r * ldc, x0[r], cols, accumulate);
}

/* Pack panel q of B's rows pc .. pc+kc-1 (width 2V, or V for a narrow last panel,
   zero-padded) into slot ``slot`` of the packing buffer. */
static inline const NN_T *NN_NAME(nn_gemm_pack)(ptrdiff_t q, ptrdiff_t slot, ptrdiff_t pc,
                                                ptrdiff_t kc, ptrdiff_t N, const NN_T *B,
                                                ptrdiff_t rsb, ptrdiff_t csb, NN_T *bp0)
{
    const ptrdiff_t V = NN_V;
    ptrdiff_t j = q * 2 * V;
    ptrdiff_t w = N - j <= V ? V : 2 * V;
    ptrdiff_t valid = N - j < w ? N - j : w;
    NN_T *bp = bp0 + slot * 2 * V * NN_KC;
    for (ptrdiff_t p = 0; p < kc; p++) {
        const NN_T *src = B + (pc + p) * rsb + j * csb;
        NN_T *dst = bp + p * w;
        /* A loop, not memcpy: rows are short and a library call per row costs
           more than the copy. */
        if (csb == 1 && NN_AVX512_HELPERS && valid < w) {
            /* A narrow panel's rows: one masked load (zeros past ``valid``) and
               whole-vector stores, in place of a value at a time. */
            for (ptrdiff_t u = 0; u < w; u += V) {
                ptrdiff_t left = valid - u;
                if (left >= V) *(NN_VEC *)(dst + u) = *(const NN_VECU *)(src + u);
                else NN_NAME(nn_load_masked)(src + u, left > 0 ? left : 0, dst + u);
            }
            continue;
        } else if (csb == 1) {
            for (ptrdiff_t u = 0; u < valid; u++) dst[u] = src[u];
        } else if (csb <= rsb) {
            for (ptrdiff_t u = 0; u < valid; u++) dst[u] = src[u * csb];
        }
        for (ptrdiff_t u = valid; u < w; u++) dst[u] = 0;
    }
    if (csb != 1 && csb > rsb) {
        /* B stored transposed (a weight matrix read as W^T): walk each stored row
           along its contiguous run of p, rather than reading ``valid`` scattered
           cache lines for every p. */
        ptrdiff_t u0 = 0;
        if (NN_AVX512_HELPERS && sizeof(NN_T) == 4 && rsb == 1) {
            /* Whole 16 x 16 blocks in registers (float, AVX-512). */
            for (; u0 + 16 <= valid; u0 += 16) {
                const NN_T *src = B + pc + (j + u0) * csb;
                ptrdiff_t p = 0;
                for (; p + 16 <= kc; p += 16)
                    nn_transpose16_f32((const float *)(src + p), csb,
                                       (float *)(bp + p * w + u0), w);
                for (; p < kc; p++)
                    for (ptrdiff_t u = 0; u < 16; u++)
                        bp[p * w + u0 + u] = src[p + u * csb];
            }
        }
        for (ptrdiff_t u = u0; u < valid; u++) {
            const NN_T *src = B + pc * rsb + (j + u) * csb;
            for (ptrdiff_t p = 0; p < kc; p++) bp[p * w + u] = src[p * rsb];
        }
    }
    return bp;
}

/* C[i] (+)= sum_p A[i*rsa + p] b[p] for a one-column C whose A rows and b are both
   contiguous along p: dot products along the vector lanes, no packing at all. */
static inline void NN_NAME(nn_dots)(ptrdiff_t M, ptrdiff_t K, const NN_T *A, ptrdiff_t rsa,
                                    const NN_T *b, NN_T *C, int accumulate)
{
    const ptrdiff_t V = NN_V;
    ptrdiff_t i0 = 0;
    if (NN_AVX512_HELPERS && sizeof(NN_T) == 4)
        for (; i0 + 16 <= M; i0 += 16)
            nn_dots16_f32(K, (const float *)(A + i0 * rsa), rsa, (const float *)b,
                          (float *)(C + i0), accumulate);
    for (ptrdiff_t i = i0; i < M; i++) {
        const NN_T *a = A + i * rsa;
        NN_VEC x = {0};
        ptrdiff_t p = 0;
        for (; p + V <= K; p += V)
            x += *(const NN_VECU *)(a + p) * *(const NN_VECU *)(b + p);
        NN_T s = NN_NAME(nn_hsum)(x);
        for (; p < K; p++) s += a[p] * b[p];
        C[i] = accumulate ? C[i] + s : s;
    }
}

/* C (+)= op(A) op(B) for a product of a few hundred multiply-adds whose C is at most
   one vector wide and whose B rows are contiguous: row by row, each B row loaded
   where it lies. Packing, and tiles of NN_MR rows when M is 2, cost more than such
   a product itself (a tiny network's every product is one). */
static inline void NN_NAME(nn_gemm_direct)(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K,
                                           const NN_T *A, ptrdiff_t rsa, ptrdiff_t csa,
                                           const NN_T *B, ptrdiff_t rsb, NN_T *C,
                                           int accumulate)
{
    for (ptrdiff_t i = 0; i < M; i++) {
        NN_VEC x = {0};
        for (ptrdiff_t p = 0; p < K; p++) {
            NN_VEC b;
            if (N == NN_V) b = *(const NN_VECU *)(B + p * rsb);
            else NN_NAME(nn_load_masked)(B + p * rsb, N, (NN_T *)&b);
            x += A[i * rsa + p * csa] * b;
        }
        NN_NAME(nn_store)(C + i * N, x, N, accumulate);
    }
}

/* Whether nn_gemm_direct_* takes a product: C ``width`` values wide, A of
   ``a_values`` values, B's rows contiguous. */
static inline int NN_NAME(nn_gemm_direct_fits)(ptrdiff_t width, ptrdiff_t a_values,
                                               int b_rows_contiguous)
{
    return NN_AVX512_HELPERS && width <= NN_V && b_rows_contiguous
           && a_values <= NN_DIRECT_MAX;
}

/* Columns [0, cols) of a one-row C (+)= a op(B) over terms p < kc, up to 4 whole
   vectors and a partial one: each column summed from zero in order of p, in a
   register, as a tile sums it, with B read in place. */
static inline void NN_NAME(nn_gemm_row_block)(ptrdiff_t kc, const NN_T *a, ptrdiff_t csa,
                                              const NN_T *B, ptrdiff_t rsb, ptrdiff_t cols,
                                              NN_T *c, int accumulate)
{
    const ptrdiff_t V = NN_V, full = cols / V, tail = cols % V;
    NN_VEC x0 = {0}, x1 = {0}, x2 = {0}, x3 = {0}, xt = {0};
    for (ptrdiff_t p = 0; p < kc; p++) {
        const NN_T s = a[p * csa];
        const NN_T *b = B + p * rsb;
        /* four independent sums in flight hide the latency of each */
        if (full > 0) x0 += s * *(const NN_VECU *)b;
        if (full > 1) x1 += s * *(const NN_VECU *)(b + V);
        if (full > 2) x2 += s * *(const NN_VECU *)(b + 2 * V);
        if (full > 3) x3 += s * *(const NN_VECU *)(b + 3 * V);
        if (tail) {
            NN_VEC t;
            if (NN_AVX512_HELPERS) {
                NN_NAME(nn_load_masked)(b + full * V, tail, (NN_T *)&t);
            } else {
                NN_T lanes[NN_V] = {0};
                for (ptrdiff_t u = 0; u < tail; u++) lanes[u] = b[full * V + u];
                memcpy(&t, lanes, sizeof(t));
            }
            xt += s * t;
        }
    }
    if (full > 0) NN_NAME(nn_store)(c, x0, V, accumulate);
    if (full > 1) NN_NAME(nn_store)(c + V, x1, V, accumulate);
    if (full > 2) NN_NAME(nn_store)(c + 2 * V, x2, V, accumulate);
    if (full > 3) NN_NAME(nn_store)(c + 3 * V, x3, V, accumulate);
    if (tail) NN_NAME(nn_store)(c + full * V, xt, tail, accumulate);
}

/* C (1 x N) (+)= a op(B), B's rows contiguous: the sums of the tiles (each k-block
   of NN_KBLOCK(K) terms summed from zero, then stored or added to C, block after
   block), so the same results, without packing B or computing a tile's spare rows:
   a layer's pass over one row costs about its multiply-adds. */
static inline void NN_NAME(nn_gemm_row)(ptrdiff_t N, ptrdiff_t K, const NN_T *a,
                                        ptrdiff_t csa, const NN_T *B, ptrdiff_t rsb,
                                        NN_T *C, int accumulate)
{
    const ptrdiff_t V = NN_V, kb = NN_KBLOCK(K);
    for (ptrdiff_t pc = 0; pc < K; pc += kb) {
        ptrdiff_t kc = K - pc < kb ? K - pc : kb;
        for (ptrdiff_t j = 0; j < N; j += 4 * V)
            NN_NAME(nn_gemm_row_block)(kc, a + pc * csa, csa, B + pc * rsb + j, rsb,
                                       N - j < 4 * V ? N - j : 4 * V, C + j,
                                       accumulate || pc > 0);
    }
}

/* Row tiles t0 .. t1-1 of C's columns under packed panel q; A read in place, or from
   ``ap``, where nn_gemm_pack_a_* packed those tiles. */
NN_HOT_INLINE void NN_NAME(nn_gemm_sweep)(ptrdiff_t q, ptrdiff_t t0, ptrdiff_t t1,
                                          ptrdiff_t pc, ptrdiff_t kc, ptrdiff_t M,
                                          ptrdiff_t N, const NN_T *A, ptrdiff_t rsa,
                                          ptrdiff_t csa, const NN_T *ap, const NN_T *bp,
                                          NN_T *C, int acc)
{
    const ptrdiff_t V = NN_V;
    ptrdiff_t j = q * 2 * V;
    ptrdiff_t w = N - j <= V ? V : 2 * V;
    ptrdiff_t cols = N - j < w ? N - j : w;
    for (ptrdiff_t t = t0; t < t1; t++) {
        ptrdiff_t i = t * NN_MR;
        ptrdiff_t rows = M - i < NN_MR ? M - i : NN_MR;
        const NN_T *a = ap ? ap + (t - t0) * kc * NN_MR : A + i * rsa + pc * csa;
        ptrdiff_t ra = ap ? 1 : rsa, ca = ap ? NN_MR : csa;
        if (w == V)
            NN_NAME(nn_gemm_tile1)(kc, a, ra, ca, rows, bp, C + i * N + j, N, cols, acc);
        else
            NN_NAME(nn_gemm_tile2)(kc, a, ra, ca, rows, bp, C + i * N + j, N, cols, acc);
    }
}

/* Pack row tiles t0 .. t1-1 of op(A), columns pc .. pc+kc-1, at ap: tile t's kc x
   NN_MR values p-major at ap + (t - t0) * kc * NN_MR, as the tiles read them (a last
   tile's spare rows are left out: tiles read row 0 in their place). For an A stored
   transposed (a layer's input in its weight gradient), whose tiles would otherwise
   read NN_MR values from each of kc lines a stored row apart, lines that a stored row
   of a power of two bytes maps to a few sets of the cache. */
static inline void NN_NAME(nn_gemm_pack_a)(ptrdiff_t t0, ptrdiff_t t1, ptrdiff_t pc,
                                           ptrdiff_t kc, ptrdiff_t M, const NN_T *A,
                                           ptrdiff_t rsa, ptrdiff_t csa, NN_T *ap)
{
    for (ptrdiff_t t = t0; t < t1; t++) {
        ptrdiff_t i = t * NN_MR;
        ptrdiff_t rows = M - i < NN_MR ? M - i : NN_MR;
        const NN_T *src = A + i * rsa + pc * csa;
        NN_T *dst = ap + (t - t0) * kc * NN_MR;
        if (rows == NN_MR && rsa == 1) {
            for (ptrdiff_t p = 0; p < kc; p++)
                for (int r = 0; r < NN_MR; r++) dst[p * NN_MR + r] = src[p * csa + r];
        } else {
            for (ptrdiff_t p = 0; p < kc; p++)
                for (ptrdiff_t r = 0; r < rows; r++)
                    dst[p * NN_MR + r] = src[p * csa + r * rsa];
        }
    }
}

#else /* not GCC/Clang: plain loops */

static void NN_NAME(nn_gemm)(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const NN_T *A,
                             ptrdiff_t rsa, ptrdiff_t csa, const NN_T *B, ptrdiff_t rsb,
                             ptrdiff_t csb, NN_T *C, int accumulate, NN_T *pack)
{
    (void)pack;
    for (ptrdiff_t i = 0; i < M; i++) {
        NN_T *c = C + i * N;
        if (!accumulate) for (ptrdiff_t j = 0; j < N; j++) c[j] = 0;
        for (ptrdiff_t p = 0; p < K; p++) {
            NN_T a = A[i * rsa + p * csa];
            for (ptrdiff_t j = 0; j < N; j++) c[j] += a * B[p * rsb + j * csb];
        }
    }
}

static void NN_NAME(nn_dots)(ptrdiff_t M, ptrdiff_t K, const NN_T *A, ptrdiff_t rsa,
                             const NN_T *b, NN_T *C, int accumulate)
{
    for (ptrdiff_t i = 0; i < M; i++) {
        NN_T s = 0;
        for (ptrdiff_t p = 0; p < K; p++) s += A[i * rsa + p] * b[p];
        C[i] = accumulate ? C[i] + s : s;
    }
}

#endif
