# --------------------------------------------------------------------------------
# Gathering a shuffled batch (and prefetching the next one)
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
    at Xg[i * x_stride + r] (lanes_step's layout). Row-major, with ``ahead`` > 0,
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
