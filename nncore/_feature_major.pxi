# --------------------------------------------------------------------------------
# Narrow networks: the same passes in the feature-major layout
# --------------------------------------------------------------------------------
# (Included by nncore/_kernels.pyx, in the order there: the kernels are one compiled
# module.)

# When every layer is a few units wide, the row-major products are narrower than a
# vector: a layer of 16 units fills one vector per sample, an output of 1 unit one
# lane in sixteen. Stored one row per unit instead (unit j's values for the batch's
# samples contiguous), every product runs along the batch: Z^T = W^T A^T + b,
# dW = A^T delta (a sum over the samples), dLoss/dA^T = W delta^T. The batch is
# padded to whole vectors; the padding's values are computed but never summed into
# a gradient, and never reach the loss. Only networks with at most
# _FM_MAX_INPUT inputs and _FM_MAX_WIDTH units per layer (where it was
# measured faster; see feature_major).

cdef inline bint fm_layout(const Py_ssize_t* sizes, Py_ssize_t L) noexcept nogil:
    """Whether a network trains in the feature-major layout (see feature_major)."""
    cdef Py_ssize_t l
    if sizes[0] > _FM_MAX_INPUT:
        return False
    for l in range(1, L + 1):
        if sizes[l] > _FM_MAX_WIDTH:
            return False
    return True


cdef inline Py_ssize_t fm_padded(Py_ssize_t rows) noexcept nogil:
    """The feature-major row stride: rows rounded up to whole vectors of the widest
    kind, plus one vector when that is a multiple of 512 values. (Rows 2 KiB apart
    or a multiple of 4 KiB fall into one or two sets of the L1 cache, so that a
    product reading down a column of rows evicts its own lines: 32-32-1 with
    batches of 1024 ran 7x slower.)"""
    cdef Py_ssize_t stride = (rows + NN_MAX_LANES - 1) // NN_MAX_LANES * NN_MAX_LANES
    if stride % 512 == 0:
        stride += NN_MAX_LANES
    return stride


cdef inline void fm_product(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K,
                               const floating* A, Py_ssize_t rsa, Py_ssize_t csa,
                               const floating* bias, const floating* B,
                               floating* C) noexcept nogil:
    if floating is float:
        nn_fm_product_f32(M, N, K, A, rsa, csa, bias, B, C)
    else:
        nn_fm_product_f64(M, N, K, A, rsa, csa, bias, B, C)


cdef inline void dots(Py_ssize_t M, Py_ssize_t K, const floating* A, Py_ssize_t rsa,
                      const floating* b, floating* C) noexcept nogil:
    """C[i] = sum_p A[i*rsa + p] b[p] for i < M."""
    if floating is float:
        nn_dots_f32(M, K, A, rsa, b, C, 0)
    else:
        nn_dots_f64(M, K, A, rsa, b, C, 0)


cdef inline void rowsums(Py_ssize_t M, Py_ssize_t N, const floating* D, Py_ssize_t ldd,
                         floating* out) noexcept nogil:
    """out[m] = sum_n D[m*ldd + n] over the first N values of each of M rows."""
    if floating is float:
        nn_rowsums_f32(M, N, D, ldd, out)
    else:
        nn_rowsums_f64(M, N, D, ldd, out)


cdef double fm_loss(const LossConfig* loss, Py_ssize_t rows, Py_ssize_t stride,
                       Py_ssize_t K, const floating* out, const floating* T, Py_ssize_t kt,
                       const Py_ssize_t* labels, const floating* w, double norm,
                       floating* delta, floating* rows_out,
                       floating* rows_delta) noexcept nogil:
    """loss_and_delta on a feature-major output (K x stride) and delta; T's rows
    hold kt values.

    One output unit: a row of samples is the row-major column itself. Otherwise
    chunks of up to _LOSS_CHUNK samples are turned to rows (in ``rows_out``), their
    loss and delta taken row-major (into ``rows_delta``) and the delta turned back.
    """
    cdef Py_ssize_t r0, n, r, j
    cdef double total = 0
    if K == 1:
        return loss_and_delta(loss, rows, 1, out, T, labels, w, norm, delta)
    r0 = 0
    while r0 < rows:
        n = min(<Py_ssize_t>_LOSS_CHUNK, rows - r0)
        for r in range(n):
            for j in range(K):
                rows_out[r * K + j] = out[j * stride + r0 + r]
        total += loss_and_delta(loss, n, K, rows_out,
                                T + r0 * kt if T != NULL else NULL,
                                labels + r0 if labels != NULL else NULL,
                                w + r0 if w != NULL else NULL, norm, rows_delta)
        for j in range(K):
            for r in range(n):
                delta[j * stride + r0 + r] = rows_delta[r * K + j]
        r0 += n
    return total


cdef double fm_step(floating* params, floating* grads, const Py_ssize_t* sizes,
                       const Py_ssize_t* acts, Py_ssize_t L, const LossConfig* loss,
                       Py_ssize_t rows, floating* work, Py_ssize_t stride,
                       const floating* T, Py_ssize_t kt, const Py_ssize_t* labels,
                       const floating* w,
                       double norm, const OptimizerConfig* cfg, Py_ssize_t t,
                       floating* state1, floating* state2, const Dropout* drop,
                       double* hits) noexcept nogil:
    """One training step of a narrow network whose batch (rows samples) is already in
    the workspace feature-major (sizes[0] x stride, see gather_rows): forward (with
    dropout), loss, backward and each layer's update (none when the gradient is to be
    clipped: train_step then updates), as forward_pass, loss_and_delta and
    backward_pass do row-major. Returns the batch's loss (loss_and_delta's value);
    ``hits`` as in train_step."""
    cdef Py_ssize_t l, i, j, fi, fo, off, which = 0, K = sizes[L]
    cdef const floating* A_prev = work
    cdef const floating* W = params
    cdef floating* Z
    cdef floating* A
    cdef floating* D
    cdef floating* D_next
    cdef floating* dW
    cdef floating* scratch = gemm_scratch(work, sizes, L, stride)
    cdef floating column[_FM_MAX_WIDTH]
    cdef double batch_loss
    for l in range(1, L + 1):
        fi = sizes[l - 1]
        fo = sizes[l]
        Z = layer_Z(work, sizes, L, stride, l)
        A = layer_A(work, sizes, L, stride, acts, l)
        # Z_l^T (fo x stride) = W_l^T A_{l-1}^T + b_l
        fm_product(fo, stride, fi, W, 1, fo, W + fi * fo, A_prev, Z)
        activate(acts[l - 1], fo * stride, Z, A)
        if dropped(drop, l):
            dropout_apply(drop, l, t, stride, fo, 1, stride, A, Z + stride * fo)
        A_prev = layer_out(work, sizes, L, stride, acts, drop, l)
        W += fi * fo + fo
    D = delta_buffer(work, sizes, L, stride, 0)
    batch_loss = fm_loss(loss, rows, stride, K, A_prev, T, kt, labels, w, norm, D,
                            delta_buffer(work, sizes, L, stride, 1),
                            scratch)
    if not isfinite(batch_loss):
        return batch_loss
    if hits != NULL:
        hits[0] += batch_hits(loss.kind, rows, K, A_prev, 1, stride, T, kt, labels, w)
    for j in range(K):
        for i in range(rows, stride):
            D[j * stride + i] = 0
    off = param_count(sizes, L)
    for l in range(L, 0, -1):
        fi = sizes[l - 1]
        fo = sizes[l]
        off -= fi * fo + fo
        if dropped(drop, l):
            dropout_apply(drop, l, t, stride, fo, 1, stride, D, D)
        activation_backward(acts[l - 1], fo * stride, layer_Z(work, sizes, L, stride, l),
                            layer_A(work, sizes, L, stride, acts, l), D)
        A_prev = work if l == 1 else layer_out(work, sizes, L, stride, acts, drop, l - 1)
        dW = grads + off
        # dW[i, j] = sum over the batch's samples of A_prev^T[i] delta^T[j], over
        # the first ``rows`` samples only (the padding is left out). A layer with
        # a side of a few units: dot products along the rows, a row (or column) of
        # dW at a time. Otherwise the matrix product A_prev^T delta: there each of
        # the many dot products would end in a sum across the lanes, which costs
        # more than its multiply-adds.
        if fo == 1:
            dots(fi, rows, A_prev, stride, D, dW)
        elif fi == 1:
            dots(fo, rows, D, stride, A_prev, dW)
        elif fi <= _LANES_DOTS_MAX:
            for i in range(fi):
                dots(fo, rows, D, stride, A_prev + i * stride, dW + i * fo)
        elif fo <= _LANES_DOTS_MAX:
            for j in range(fo):
                dots(fi, rows, A_prev, stride, D + j * stride, column)
                for i in range(fi):
                    dW[i * fo + j] = column[i]
        else:
            own_gemm(fi, fo, rows, A_prev, stride, 1, D, 1, stride, dW, False, scratch)
        rowsums(fo, rows, D, stride, dW + fi * fo)
        if l > 1:
            which = 1 - which
            D_next = delta_buffer(work, sizes, L, stride, which)
            # dLoss/dA_{l-1}^T (fi x stride) = W_l delta_l^T
            fm_product(fi, stride, fo, params + off, fo, 1, NULL, D, D_next)
            D = D_next
        if cfg.clip_norm == 0:
            optimizer_step(cfg, t, fi * fo + fo, params + off, grads + off,
                           state1 + off if state1 != NULL else NULL,
                           state2 + off if state2 != NULL else NULL)
    return batch_loss
