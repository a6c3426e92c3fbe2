/* blocking.h: the GEMM's cache blocking, derived from the running CPU's cache sizes.
 *
 * The loop nest of nn_gemm_* (BLIS's, except that A is read in place, not packed):
 *
 *   for each block of nc columns of C        B's kc x nc block stays in L3
 *     for each k-block of NN_KBLOCK(K) terms  fixed: it sets the order of every sum
 *       for each block of mc rows of C        A's mc x kc block stays in L2
 *         for each panel of 2 vectors' width  B's kc x 2V panel, packed, in L1
 *           for each tile of NN_MR rows       C's tile in registers
 *
 * The rule, applied once at import (nn_set_blocking, from the sizes nncore/_cpu.py
 * reads from the operating system): A's block takes half of L2, so mc = L2 / 2 /
 * (kc * sizeof(T)) rows; B's block takes half of L3, so nc = L3 / 2 / (kc *
 * sizeof(T)) columns; the other halves hold the panel and C's rows passing through.
 * Each product then splits its rows and columns evenly into as few blocks of at most
 * mc rows and nc columns as will do (1000 rows under mc = 512: 2 x 500, not 512 + 488),
 * or, on several threads, into more blocks (gemm_units_body.h).
 *
 * kc is not derived from L1, as BLIS derives it: each element of C is summed one
 * k-block at a time (the block in registers, then added to C), so kc fixes the
 * rounding of every result, and results must not depend on the machine. The blocks
 * of rows and columns, the panel width and the tile height change which products are
 * computed when, never the order of any sum. NN_KC = 256 fills 32 KiB of L1 with an
 * AVX-512 float panel (256 x 32 x 4 bytes), two thirds of a 48 KiB L1.
 */
#ifndef NNCORE_CSRC_BLOCKING_H
#define NNCORE_CSRC_BLOCKING_H

#include "config.h"

/* Cache sizes assumed until nn_set_blocking is called, and for a size the operating
 * system does not report. */
#define NN_FALLBACK_L2 ((ptrdiff_t)1 << 20)
#define NN_FALLBACK_L3 ((ptrdiff_t)8 << 20)

/* The byte budget of a block of A (in L2) or of B (in L3): half the cache. */
#define NN_BLOCK_BUDGET(cache) ((cache) / 2)

typedef struct {
    ptrdiff_t l2, l3;         /* the cache sizes the blocking was derived from, bytes */
    ptrdiff_t a_bytes;        /* the budget of A's mc x kc block */
    ptrdiff_t b_bytes;        /* the budget of B's kc x nc block */
} nn_blocking_t;

static nn_blocking_t nn_blocking = {
    NN_FALLBACK_L2, NN_FALLBACK_L3,
    NN_BLOCK_BUDGET(NN_FALLBACK_L2), NN_BLOCK_BUDGET(NN_FALLBACK_L3),
};

/* Derive the blocking from the L2 and L3 sizes in bytes, 0 for a size the operating
 * system did not report (the fallback is taken). Called at import, before any product
 * runs; a product running meanwhile in another thread uses either blocking, which
 * gives it the same results. */
static inline void nn_set_blocking(ptrdiff_t l2, ptrdiff_t l3)
{
    l2 = l2 > 0 ? l2 : NN_FALLBACK_L2;
    l3 = l3 > 0 ? l3 : NN_FALLBACK_L3;
    nn_blocking.l2 = l2;
    nn_blocking.l3 = l3;
    nn_blocking.a_bytes = NN_BLOCK_BUDGET(l2);
    nn_blocking.b_bytes = NN_BLOCK_BUDGET(l3);
}

/* Integer helpers of the splits (a, b >= 1). */
static inline ptrdiff_t nn_ceil_div(ptrdiff_t a, ptrdiff_t b) { return (a + b - 1) / b; }
static inline ptrdiff_t nn_min(ptrdiff_t a, ptrdiff_t b) { return a < b ? a : b; }
static inline ptrdiff_t nn_max(ptrdiff_t a, ptrdiff_t b) { return a > b ? a : b; }

/* The most rows of C per row block (mc) for k-blocks of kc values of ``size`` bytes:
 * A's mc x kc block within its budget, at least one tile of NN_MR rows. */
static inline ptrdiff_t nn_block_rows(ptrdiff_t kc, ptrdiff_t size)
{
    ptrdiff_t rows = nn_blocking.a_bytes / (kc * size) / NN_MR * NN_MR;
    return rows > NN_MR ? rows : NN_MR;
}

/* The most columns of C per column block (nc), in panels of ``panel`` columns: B's
 * kc x nc block within its budget, at least one panel. */
static inline ptrdiff_t nn_block_cols(ptrdiff_t kc, ptrdiff_t size, ptrdiff_t panel)
{
    ptrdiff_t cols = nn_blocking.b_bytes / (kc * size) / panel * panel;
    return cols > panel ? cols : panel;
}

#endif /* NNCORE_CSRC_BLOCKING_H */
