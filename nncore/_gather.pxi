# --------------------------------------------------------------------------------
# Batches: where each comes from, gathering a shuffled one (and prefetching the next)
# --------------------------------------------------------------------------------
# (Included by nncore/_kernels.pyx, in the order there: the kernels are one compiled
# module.)

cdef inline void gather_targets(Py_ssize_t r, Py_ssize_t src, const floating* T,
                                Py_ssize_t kt, const Py_ssize_t* labels,
                                const floating* w, floating* Tg, Py_ssize_t* lg,
                                floating* wg) noexcept nogil:
    """Row src of T, labels and w (those not NULL) into row r of their buffers."""
    if T != NULL:
        copy_row(Tg + r * kt, T + src * kt, kt)
    if labels != NULL:
        lg[r] = labels[src]
    if w != NULL:
        wg[r] = w[src]


cdef void gather_rows(Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t q0, Py_ssize_t q1,
                      const Py_ssize_t* order, const floating* X, Py_ssize_t n0,
                      const floating* T, Py_ssize_t kt, const Py_ssize_t* labels,
                      const floating* w, floating* Xg, Py_ssize_t x_stride,
                      floating* Tg, Py_ssize_t* lg, floating* wg,
                      Py_ssize_t next_offset, Py_ssize_t ahead) noexcept nogil:
    """Rows r0 .. r1-1 of a shuffled batch (row r is X[order[r]]) into the gather
    buffers (T, labels, w and their buffers NULL when absent); then a prefetch of rows
    q0 .. q1-1 of the next batch (row q is X[order[next_offset + q]]): they are
    scattered over X, and by the time this batch is trained they are in cache.

    ``x_stride`` 0 gathers X row-major; otherwise feature-major, feature i of row r
    at Xg[i * x_stride + r] (fm_step's layout). Row-major, with ``ahead`` > 0,
    each row's copy is preceded by a prefetch of the row ``ahead`` places later, so
    that the misses of several long rows are outstanding at once."""
    cdef Py_ssize_t r, src, i
    if ahead and x_stride == 0:
        for r in range(r0, r1):
            if r + ahead < r1:
                prefetch_bytes(X + order[r + ahead] * n0, n0 * sizeof(floating))
            src = order[r]
            copy_row(Xg + r * n0, X + src * n0, n0)
            gather_targets(r, src, T, kt, labels, w, Tg, lg, wg)
    else:
        for r in range(r0, r1):
            src = order[r]
            if x_stride == 0:
                copy_row(Xg + r * n0, X + src * n0, n0)
            else:
                for i in range(n0):
                    Xg[i * x_stride + r] = X[src * n0 + i]
            gather_targets(r, src, T, kt, labels, w, Tg, lg, wg)
    for r in range(q0, q1):
        src = order[next_offset + r]
        prefetch_bytes(X + src * n0, n0 * sizeof(floating))
        if T != NULL:
            prefetch_bytes(T + src * kt, kt * sizeof(floating))
        if labels != NULL:
            prefetch_bytes(labels + src, sizeof(Py_ssize_t))


# Where train_batches takes its batches from. Batch b is rows b*batch_size .. (b+1)*batch_size - 1 (the
# last one may be shorter) of X, T, labels and w, read in place; or, with an
# ``order``, rows order[b*batch_size + r], gathered into the workspace (gather_rows). The
# float arrays are of the call's dtype: a struct cannot be fused, so they are
# untyped here and typed where they are read (load_batch).
ctypedef struct BatchSource:
    const void* X                 # n x n0 inputs
    const void* T                 # n x kt float targets, or NULL
    const Py_ssize_t* labels      # n class labels, or NULL
    const void* w                 # n sample weights, or NULL (unit weights)
    const Py_ssize_t* order       # the epoch's row order, or NULL (stored order)
    Py_ssize_t n
    Py_ssize_t n0
    Py_ssize_t kt
    Py_ssize_t batch_size         # rows per batch
    Py_ssize_t x_stride           # 0: row-major; else feature-major (fm_step)
    Py_ssize_t ahead              # gather_rows's prefetch distance within a batch
    bint prefetch_next            # whether to prefetch the next batch's rows
    Py_ssize_t parts              # threads that may share a large gather


cdef Py_ssize_t load_batch(const BatchSource* src, Py_ssize_t b, bint next_too,
                           floating* work, const Py_ssize_t* sizes, Py_ssize_t L,
                           Py_ssize_t cap, const floating** X, const floating** T,
                           const Py_ssize_t** labels,
                           const floating** w) noexcept nogil:
    """Make batch b ready for train_step: return its number of rows (0 past the end
    of the data) and point X, T, labels and w at its rows (NULL for those absent).

    Gathered batches go to the workspace (the input first, the targets, weights
    and labels after the packing buffer); ``next_too``: batch b + 1 follows in this
    call, so its rows may be prefetched. Feature-major, the input goes to the
    workspace in any case (X is then left unset), with the padding samples zero.
    """
    cdef Py_ssize_t start = b * src.batch_size, rows, next_rows = 0, c, r, i
    cdef Py_ssize_t n0 = src.n0, kt = src.kt, x_stride = src.x_stride
    cdef const floating* X_src = <const floating*>src.X
    cdef const floating* T_src = <const floating*>src.T
    cdef const floating* w_src = <const floating*>src.w
    cdef floating* Xg = work
    cdef floating* Tg = gathered_targets(work, sizes, L, cap)
    cdef floating* wg = Tg + cap * sizes[L]
    cdef Py_ssize_t* lg = gathered_labels(work, sizes, L, cap)
    rows = min(src.batch_size, src.n - start)
    if rows <= 0:
        return 0
    if src.order != NULL:
        # Each row of the batch, and a prefetch of the next batch's (see
        # gather_rows); for a large batch, shared among the threads: it is
        # memory-bound work that would otherwise leave the others waiting.
        if src.prefetch_next and next_too:
            next_rows = max(0, min(src.batch_size, src.n - start - src.batch_size))
        if T_src == NULL:
            Tg = NULL
        if w_src == NULL:
            wg = NULL
        if src.labels == NULL:
            lg = NULL
        if src.parts > 1 and rows * n0 > _GATHER_PARALLEL_ABOVE:
            for c in prange(src.parts, schedule="static", chunksize=1, num_threads=src.parts):
                gather_rows(c * rows // src.parts, (c + 1) * rows // src.parts,
                            c * next_rows // src.parts, (c + 1) * next_rows // src.parts,
                            src.order + start, X_src, n0, T_src, kt, src.labels, w_src,
                            Xg, x_stride, Tg, lg, wg, src.batch_size, src.ahead)
        else:
            gather_rows(0, rows, 0, next_rows, src.order + start, X_src, n0, T_src, kt,
                        src.labels, w_src, Xg, x_stride, Tg, lg, wg, src.batch_size, src.ahead)
        X[0] = Xg
        T[0] = Tg
        labels[0] = lg
        w[0] = wg
    else:
        X[0] = X_src + start * n0
        T[0] = T_src + start * kt if T_src != NULL else NULL
        labels[0] = src.labels + start if src.labels != NULL else NULL
        w[0] = w_src + start if w_src != NULL else NULL
        if x_stride:
            # Rows in their stored order, turned feature-major.
            for r in range(rows):
                for i in range(n0):
                    Xg[i * x_stride + r] = X[0][r * n0 + i]
    if x_stride:
        # The padding samples: zeros, so that every value computed from them is
        # finite (they never reach a gradient; see fm_step).
        for i in range(n0):
            for r in range(rows, cap):
                Xg[i * x_stride + r] = 0
    return rows


cdef inline double batch_weight(const floating* w, Py_ssize_t rows) noexcept nogil:
    """The sum of a batch's sample weights (its row count when w is NULL)."""
    cdef Py_ssize_t r
    cdef double total = 0
    if w == NULL:
        return rows
    for r in range(rows):
        total += w[r]
    return total
