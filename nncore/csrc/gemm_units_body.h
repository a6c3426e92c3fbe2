/* gemm_units_body.h: the matrix product nn_gemm_* for one element type: the products
 * that take a loop of their own, and the split of the others into units of work,
 * run in order on the calling thread or taken by OpenMP's threads from a shared
 * counter.
 *
 * A per-type body, no include guard: gemm.h compiles it once per element type
 * (each_type.h), after gemm_body.h, whose inner loops it calls.
 *
 * A unit is a block of C's rows (at most mc, blocking.h) under a group of its panels
 * (at most nc columns), over all of K, k-block after k-block: for each k-block it
 * packs A's rows (when A is stored transposed), then each panel of B, and sweeps the
 * rows' tiles under it. Every element of C lies in exactly one unit, which sums it
 * k-block after k-block in order of p: which thread runs a unit, and when, changes no
 * result. Threads take units from a shared counter (OpenMP's dynamic schedule), so a
 * thread slowed by another process on its core simply takes fewer of them; each
 * thread packs into its own share of the buffer.
 */

#if defined(__GNUC__)

/* One product: C (+)= op(A) op(B), op(A)(i, p) = A[i*rsa + p*csa], op(B)(p, j) =
   B[p*rsb + j*csb], C of M x N, contiguous. */
typedef struct {
    ptrdiff_t M, N, K;
    const NN_T *A;
    ptrdiff_t rsa, csa;
    const NN_T *B;
    ptrdiff_t rsb, csb;
    NN_T *C;
    int accumulate;
} NN_NAME(nn_gemm_job);

/* How a product is split: row blocks of ``tiles`` tiles, column groups of ``panels``
   panels; ``share`` buffer values per thread (a panel slot, then A's row block when
   ``pack_a``); ``threads`` running the units. */
typedef struct {
    ptrdiff_t n_tiles, tiles, n_row_blocks;
    ptrdiff_t n_panels, panels, n_groups;
    ptrdiff_t share;
    int pack_a, threads;
} NN_NAME(nn_gemm_plan);

/* Unit u of the plan (row block u / n_groups, column group u % n_groups), packing into
   ``mine``, this thread's share of the buffer. */
static void NN_NAME(nn_gemm_unit)(const NN_NAME(nn_gemm_job) *j,
                                  const NN_NAME(nn_gemm_plan) *plan, ptrdiff_t u,
                                  NN_T *mine)
{
    const ptrdiff_t kb = NN_KBLOCK(j->K);
    const ptrdiff_t ta = u / plan->n_groups * plan->tiles;
    const ptrdiff_t qa = u % plan->n_groups * plan->panels;
    const ptrdiff_t tz = plan->n_tiles - ta < plan->tiles ? plan->n_tiles
                                                          : ta + plan->tiles;
    const ptrdiff_t qz = plan->n_panels - qa < plan->panels ? plan->n_panels
                                                            : qa + plan->panels;
    NN_T *ap = plan->pack_a ? mine + 2 * NN_V * NN_KC : NULL;
    for (ptrdiff_t pc = 0; pc < j->K; pc += kb) {
        ptrdiff_t kc = j->K - pc < kb ? j->K - pc : kb;
        if (ap) NN_NAME(nn_gemm_pack_a)(ta, tz, pc, kc, j->M, j->A, j->rsa, j->csa, ap);
        for (ptrdiff_t q = qa; q < qz; q++) {
            const NN_T *bp = NN_NAME(nn_gemm_pack)(q, 0, pc, kc, j->N, j->B, j->rsb,
                                                   j->csb, mine);
            NN_NAME(nn_gemm_sweep)(q, ta, tz, pc, kc, j->M, j->N, j->A, j->rsa, j->csa,
                                   ap, bp, j->C, j->accumulate || pc > 0);
        }
    }
}

/* The split of a product for up to ``threads`` threads and ``buffer`` values of
   packing buffer: blocks of the sizes blocking.h gives, then, for several threads,
   smaller ones until there are 4 units per thread (enough for a dynamic schedule to
   even out the threads' speeds): more row blocks when A is packed (a row block of A
   is packed once per column group), else more column groups (nothing is packed
   twice for them). Each is split evenly. */
static NN_NAME(nn_gemm_plan) NN_NAME(nn_gemm_split)(const NN_NAME(nn_gemm_job) *j,
                                                    int threads, ptrdiff_t buffer)
{
    NN_NAME(nn_gemm_plan) plan;
    const ptrdiff_t kb = NN_KBLOCK(j->K), slot = 2 * NN_V * NN_KC;
    plan.n_tiles = nn_ceil_div(j->M, NN_MR);
    plan.n_panels = nn_ceil_div(j->N, 2 * NN_V);
    plan.pack_a = j->csa != 1 && plan.n_tiles > 1 && plan.n_panels > 1;
    /* No more threads than the buffer has shares for: a slot and a tile of A each. */
    ptrdiff_t most = buffer / (slot + (plan.pack_a ? NN_MR * NN_KC : 0));
    plan.threads = threads < most ? threads : (int)(most > 1 ? most : 1);
    plan.share = buffer / plan.threads / NN_KC * NN_KC;     /* keeps shares aligned */
    ptrdiff_t tiles = nn_block_rows(kb, sizeof(NN_T)) / NN_MR;
    ptrdiff_t panels = nn_block_cols(kb, sizeof(NN_T), 2 * NN_V) / (2 * NN_V);
    if (plan.pack_a && tiles > (plan.share - slot) / (NN_MR * NN_KC))
        tiles = (plan.share - slot) / (NN_MR * NN_KC);
    ptrdiff_t row_blocks = nn_ceil_div(plan.n_tiles, tiles);
    ptrdiff_t groups = nn_ceil_div(plan.n_panels, panels);
    const ptrdiff_t wanted = 4 * (ptrdiff_t)plan.threads;
    if (plan.threads > 1 && row_blocks * groups < wanted) {
        ptrdiff_t *first = plan.pack_a ? &row_blocks : &groups;
        ptrdiff_t *second = plan.pack_a ? &groups : &row_blocks;
        const ptrdiff_t most_first = plan.pack_a ? plan.n_tiles : plan.n_panels;
        const ptrdiff_t most_second = plan.pack_a ? plan.n_panels : plan.n_tiles;
        *first = nn_min(most_first, nn_ceil_div(wanted, *second));
        *second = nn_max(*second, nn_min(most_second, nn_ceil_div(wanted, *first)));
    }
    plan.tiles = nn_ceil_div(plan.n_tiles, row_blocks);
    plan.panels = nn_ceil_div(plan.n_panels, groups);
    plan.n_row_blocks = nn_ceil_div(plan.n_tiles, plan.tiles);
    plan.n_groups = nn_ceil_div(plan.n_panels, plan.panels);
    if (plan.threads > plan.n_row_blocks * plan.n_groups)
        plan.threads = (int)(plan.n_row_blocks * plan.n_groups);
    return plan;
}

/* Run every unit of the product, on ``threads`` threads (1: on the calling thread,
   with no OpenMP region at all: entering one costs microseconds). */
static void NN_NAME(nn_gemm_units)(const NN_NAME(nn_gemm_job) *j, int threads,
                                   ptrdiff_t buffer, NN_T *bp0)
{
    const NN_NAME(nn_gemm_plan) plan = NN_NAME(nn_gemm_split)(j, threads, buffer);
    const ptrdiff_t units = plan.n_row_blocks * plan.n_groups;
    if (plan.threads <= 1) {
        for (ptrdiff_t u = 0; u < units; u++) NN_NAME(nn_gemm_unit)(j, &plan, u, bp0);
        return;
    }
    NN_PRAGMA(omp parallel for schedule(dynamic, 1) num_threads(plan.threads))
    for (ptrdiff_t u = 0; u < units; u++)
        NN_NAME(nn_gemm_unit)(j, &plan, u, bp0 + NN_THREAD_NUM() * plan.share);
}

/* The products that take a loop of their own, on the calling thread: a C at most one
   vector wide with a small A (row by row, unpacked), a one-column C (dot products, or
   the one-row C^T = op(B)^T op(A)^T) and a one-row C. Returns whether it took the
   product. The choice depends on the shape alone, never on the thread count: these
   loops sum in another order than the units, so a product large enough to thread
   must still take the loop it takes on one thread, or its bits would change with the
   threads. */
static inline int NN_NAME(nn_gemm_narrow)(const NN_NAME(nn_gemm_job) *j, NN_T *bp0)
{
    const ptrdiff_t M = j->M, N = j->N, K = j->K;
    /* Products too small to thread or pack (all of a tiny network's). */
    if (N > 1 && NN_NAME(nn_gemm_direct_fits)(N, M * K, j->csb == 1)) {
        NN_NAME(nn_gemm_direct)(M, N, K, j->A, j->rsa, j->csa, j->B, j->rsb, j->C,
                                j->accumulate);
        return 1;
    }
    if (N == 1 && j->csa == 1 && j->rsb == 1) {
        NN_NAME(nn_dots)(M, K, j->A, j->rsa, j->B, j->C, j->accumulate);
        return 1;
    }
    if (N == 1 && M > 1) {
        /* A one-column C (M x 1) is, in the same memory, the one-row C^T = op(B)^T
           op(A)^T: solved that way, the M values lie along the vector lanes instead of
           filling one lane of each vector. (On the calling thread: the buffer is sized
           for N, not M, which holds one panel slot and no packed A.) */
        if (NN_NAME(nn_gemm_direct_fits)(M, M * K, j->rsa == 1)) {
            NN_NAME(nn_gemm_direct)(1, M, K, j->B, 0, j->rsb, j->A, j->csa, j->C,
                                    j->accumulate);
        } else {
            const NN_NAME(nn_gemm_job) swapped = {1, M, K, j->B, 0, j->rsb, j->A, j->csa,
                                                  j->rsa, j->C, j->accumulate};
            NN_NAME(nn_gemm_units)(&swapped, 1, 2 * NN_V * NN_KC, bp0);
        }
        return 1;
    }
    if (M == 1 && j->csb == 1) {
        NN_NAME(nn_gemm_row)(N, K, j->A, j->csa, j->B, j->rsb, j->C, j->accumulate);
        return 1;
    }
    return 0;
}

/* C (+)= op(A) op(B); ``pack`` holds NN_GEMM_PACK_SIZE(N) values. */
static void NN_NAME(nn_gemm)(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const NN_T *A,
                             ptrdiff_t rsa, ptrdiff_t csa, const NN_T *B, ptrdiff_t rsb,
                             ptrdiff_t csb, NN_T *C, int accumulate, NN_T *pack)
{
    const NN_NAME(nn_gemm_job) job = {M, N, K, A, rsa, csa, B, rsb, csb, C, accumulate};
    /* The packing buffer must be vector-aligned for the aligned panel loads. */
    NN_T *bp0 = (NN_T *)(((uintptr_t)pack + NN_VBYTES - 1) & ~(uintptr_t)(NN_VBYTES - 1));
    /* Threads when built with OpenMP and the product is large enough to pay for
       waking them. */
    int threads = M * N * K > NN_PARALLEL_ABOVE ? nn_team_size() : 1;
    if (K == 0) {
        if (!accumulate)
            for (ptrdiff_t i = 0; i < M; i++) memset(C + i * N, 0, N * sizeof(NN_T));
        return;
    }
    if (NN_NAME(nn_gemm_narrow)(&job, bp0))
        return;
    NN_NAME(nn_gemm_units)(&job, threads, 2 * NN_KC * (N + 2 * NN_MAX_LANES), bp0);
}

#endif
