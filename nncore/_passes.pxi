# --------------------------------------------------------------------------------
# Network passes over one batch
# --------------------------------------------------------------------------------
# (Included by nncore/_kernels.pyx, in the order there: the kernels are one compiled
# module.)

# Layers are numbered as in nncore.reference: layer l = 1..L maps A_{l-1} to
# A_l = f_l(Z_l), Z_l = A_{l-1} W_l + b_l, with A_0 = X. sizes[l] is the width of A_l
# (sizes[0] the inputs), so layer l has fan_in sizes[l - 1] and fan_out sizes[l];
# its activation code is acts[l - 1] (C arrays count from 0).

cdef inline Py_ssize_t param_count(const Py_ssize_t* sizes, Py_ssize_t L) noexcept nogil:
    """Length of the flat parameters: W_l (fan_in x fan_out) then b_l, l = 1..L."""
    cdef Py_ssize_t l, n = 0
    for l in range(1, L + 1):
        n += sizes[l - 1] * sizes[l] + sizes[l]
    return n


cdef inline Py_ssize_t max_width(const Py_ssize_t* sizes, Py_ssize_t L) noexcept nogil:
    """The widest layer output, max over l = 1..L of sizes[l]."""
    cdef Py_ssize_t l, m = 0
    for l in range(1, L + 1):
        if sizes[l] > m:
            m = sizes[l]
    return m


cdef inline floating* layer_Z(floating* work, const Py_ssize_t* sizes, Py_ssize_t L,
                              Py_ssize_t cap, Py_ssize_t l) noexcept nogil:
    """Z_l, layer l's pre-activation (cap x sizes[l]), in a workspace sized for ``cap``
    rows; l = L + 1 gives the end of the layers' buffers."""
    cdef Py_ssize_t i, off = cap * sizes[0]
    for i in range(1, l):
        off += 2 * cap * sizes[i]
    return work + off


cdef inline floating* layer_A(floating* work, const Py_ssize_t* sizes, Py_ssize_t L,
                              Py_ssize_t cap, const Py_ssize_t* acts,
                              Py_ssize_t l) noexcept nogil:
    """A_l, layer l's output: Z_l's buffer itself when f_l' can be had from A_l."""
    cdef floating* Z = layer_Z(work, sizes, L, cap, l)
    return Z if in_place(acts[l - 1]) else Z + cap * sizes[l]


cdef inline floating* layer_out(floating* work, const Py_ssize_t* sizes, Py_ssize_t L,
                                Py_ssize_t cap, const Py_ssize_t* acts,
                                const Dropout* drop, Py_ssize_t l) noexcept nogil:
    """What layer l passes on: A_l, or with dropout A_l's dropped copy, kept in Z_l's
    second half (free when A_l overwrote Z_l; A_l itself for gelu, which takes f'
    from Z_l), so that A_l stays for f_l'."""
    if dropped(drop, l):
        return layer_Z(work, sizes, L, cap, l) + cap * sizes[l]
    return layer_A(work, sizes, L, cap, acts, l)


cdef inline floating* delta_buffer(floating* work, const Py_ssize_t* sizes, Py_ssize_t L,
                                   Py_ssize_t cap, Py_ssize_t which) noexcept nogil:
    """Delta buffer 0 or 1 (cap x the widest layer), after the layers' buffers."""
    return layer_Z(work, sizes, L, cap, L + 1) + which * cap * max_width(sizes, L)


cdef inline void copy_row(floating* dst, const floating* src, Py_ssize_t n) noexcept nogil:
    """dst[:n] = src[:n]; a loop the compiler inlines, since rows are often a few
    values long and a memcpy call per row would cost more than the copy."""
    cdef Py_ssize_t j
    for j in range(n):
        dst[j] = src[j]


cdef inline floating* gemm_scratch(floating* work, const Py_ssize_t* sizes, Py_ssize_t L,
                                   Py_ssize_t cap) noexcept nogil:
    """Packing buffer of the matrix products, after the deltas."""
    return delta_buffer(work, sizes, L, cap, 2)


cdef inline Py_ssize_t gemm_scratch_size(const Py_ssize_t* sizes,
                                         Py_ssize_t L) noexcept nogil:
    """Length of the packing buffer: the products' N is a fan_in or a fan_out."""
    return NN_GEMM_PACK_SIZE(max(max_width(sizes, L), sizes[0]))


cdef inline floating* gathered_targets(floating* work, const Py_ssize_t* sizes,
                                       Py_ssize_t L, Py_ssize_t cap) noexcept nogil:
    """After the packing buffer: a gathered batch's targets (up to cap x sizes[L]:
    no target row is wider than the output), then its weights (cap values)."""
    return gemm_scratch(work, sizes, L, cap) + gemm_scratch_size(sizes, L)


cdef inline Py_ssize_t* gathered_labels(floating* work, const Py_ssize_t* sizes,
                                        Py_ssize_t L, Py_ssize_t cap) noexcept nogil:
    """After the gathered weights: a gathered batch's class labels (cap integers),
    aligned for their type. The workspace is a float array; this part of it is only
    ever read and written as integers."""
    cdef size_t p = <size_t>(gathered_targets(work, sizes, L, cap) + cap * sizes[L] + cap)
    return <Py_ssize_t*>((p + sizeof(Py_ssize_t) - 1) // sizeof(Py_ssize_t)
                         * sizeof(Py_ssize_t))


cdef inline Py_ssize_t gathered_size(Py_ssize_t cap, Py_ssize_t K) noexcept nogil:
    """Workspace values behind gathered_targets: targets, weights, and the labels
    with their alignment (8 bytes each, at most 2 values of either float type)."""
    return cap * K + cap + 2 * (cap + 1)


cdef void forward_pass(const floating* params, const Py_ssize_t* sizes,
                       const Py_ssize_t* acts, Py_ssize_t L, const floating* X,
                       Py_ssize_t rows, floating* work, Py_ssize_t cap,
                       const Dropout* drop, Py_ssize_t t) noexcept nogil:
    """A_l = f_l(A_{l-1} W_l + b_l) for l = 1..L; A_0 = X (rows x sizes[0]). With
    ``drop`` (training; else NULL), a layer's output is dropped out with step t's
    masks before it goes on (layer_out)."""
    cdef Py_ssize_t l, fi, fo
    cdef const floating* A_prev = X
    cdef const floating* W = params
    cdef floating* Z
    cdef floating* A
    for l in range(1, L + 1):
        fi = sizes[l - 1]
        fo = sizes[l]
        Z = layer_Z(work, sizes, L, cap, l)
        A = layer_A(work, sizes, L, cap, acts, l)
        matmul(False, False, rows, fo, fi, A_prev, W, 0, Z,
               gemm_scratch(work, sizes, L, cap))
        bias_activation(acts[l - 1], rows, fo, W + fi * fo, Z, A)
        if dropped(drop, l):
            dropout_apply(drop, l, t, rows, fo, fo, 1, A, Z + cap * fo)
        A_prev = layer_out(work, sizes, L, cap, acts, drop, l)
        W += fi * fo + fo


cdef void backward_pass(floating* params, floating* grads, const Py_ssize_t* sizes,
                        const Py_ssize_t* acts, Py_ssize_t L, const floating* X,
                        Py_ssize_t rows, floating* work, Py_ssize_t cap,
                        floating beta, const OptimizerConfig* cfg, Py_ssize_t t,
                        floating* state1, floating* state2, const Dropout* drop,
                        floating* dX) noexcept nogil:
    """Gradients from the output delta (in delta buffer 0, dLoss/dA_L).

    For l = L..1: delta_l = dLoss/dA_l * f_l'(Z_l); dW_l = A_{l-1}^T delta_l;
    db_l = sum_rows delta_l; dLoss/dA_{l-1} = delta_l W_l^T (for l > 1, and into dX,
    rows x sizes[0], for l = 1 when dX is not NULL). With beta = 1 the gradients are
    added to ``grads``. With ``drop``, dLoss/dA_l is first masked as forward_pass
    masked A_l.

    With an optimizer ``cfg`` (else NULL), layer l's parameters take update number t
    as soon as dLoss/dA_{l-1}, the last use of W_l, is done: the same arithmetic as
    one pass after the backward pass (the update is elementwise), but the layer's
    gradient is still in cache, and the first layer, updated last, is in cache for
    the next batch's forward pass. Not when the gradient is to be clipped: that
    needs all of it first (clip_and_update).
    """
    cdef Py_ssize_t l, fi, fo, off
    cdef Py_ssize_t which = 0
    cdef floating* D = delta_buffer(work, sizes, L, cap, 0)
    cdef floating* D_next
    cdef floating* dW
    cdef floating* db
    cdef const floating* A_prev
    cdef floating* scratch = gemm_scratch(work, sizes, L, cap)
    cdef bint update = cfg != NULL and cfg.clip_norm == 0
    off = param_count(sizes, L)
    for l in range(L, 0, -1):
        fi = sizes[l - 1]
        fo = sizes[l]
        off -= fi * fo + fo
        if dropped(drop, l):
            dropout_apply(drop, l, t, rows, fo, fo, 1, D, D)
        activation_backward(acts[l - 1], rows * fo, layer_Z(work, sizes, L, cap, l),
                            layer_A(work, sizes, L, cap, acts, l), D)
        A_prev = X if l == 1 else layer_out(work, sizes, L, cap, acts, drop, l - 1)
        dW = grads + off
        db = dW + fi * fo
        matmul(True, False, fi, fo, rows, A_prev, D, beta, dW, scratch)
        if floating is float:
            nn_colsums_f32(rows, fo, D, db, beta != 0)
        else:
            nn_colsums_f64(rows, fo, D, db, beta != 0)
        if l > 1:
            which = 1 - which
            D_next = delta_buffer(work, sizes, L, cap, which)
            matmul(False, True, rows, fi, fo, D, params + off, 0, D_next, scratch)
            D = D_next
        elif dX != NULL:
            matmul(False, True, rows, fi, fo, D, params + off, 0, dX, scratch)
        if update:
            optimizer_step(cfg, t, fi * fo + fo, params + off, grads + off,
                           state1 + off if state1 != NULL else NULL,
                           state2 + off if state2 != NULL else NULL)


cdef void clip_and_update(const OptimizerConfig* cfg, Py_ssize_t t, Py_ssize_t n,
                          floating* params, floating* grads, floating* state1,
                          floating* state2) noexcept nogil:
    """Update number t of all n parameters from a clipped gradient, as
    torch.nn.utils.clip_grad_norm_ clips it: grads *= c / (norm + 1e-6) when that
    factor is below 1, c = cfg.clip_norm, norm = the L2 norm of all n gradients
    (summed in double)."""
    cdef Py_ssize_t i
    cdef double total = 0, factor
    cdef floating f
    for i in range(n):
        total += <double>grads[i] * grads[i]
    factor = cfg.clip_norm / (sqrt(total) + 1e-6)
    if factor < 1:
        f = <floating>factor
        for i in range(n):
            grads[i] *= f
    optimizer_step(cfg, t, n, params, grads, state1, state2)


cdef double train_step(floating* params, floating* grads, const Py_ssize_t* sizes,
                       const Py_ssize_t* acts, Py_ssize_t L, const LossConfig* loss,
                       bint feature_major, const floating* X, Py_ssize_t rows,
                       const floating* T,
                       Py_ssize_t kt, const Py_ssize_t* labels, const floating* w,
                       double weight, floating* work, Py_ssize_t cap,
                       const OptimizerConfig* cfg, Py_ssize_t t, floating* state1,
                       floating* state2, const Dropout* drop, double* hits) noexcept nogil:
    """One optimizer step (number t) on one batch of ``rows`` rows (see load_batch):
    forward (with dropout, ``drop`` not NULL), the fused loss and output delta,
    backward with each layer's update (or, with clipping, clip_and_update after it).

    ``weight``: the batch's sum of weights, by which its loss is normalised. Feature-
    major (``feature_major``), the batch is already in the workspace (X unused). Returns the
    batch's loss; when that is not finite, no parameter has changed. ``hits``, unless
    NULL, gets the batch's weighted count of rows classified right (batch_hits) by the
    output before the update added to it.
    """
    cdef double batch_loss
    cdef floating* out
    if feature_major:
        batch_loss = fm_step(params, grads, sizes, acts, L, loss, rows, work, cap, T,
                             kt, labels, w, weight, cfg, t, state1, state2, drop, hits)
    else:
        forward_pass(params, sizes, acts, L, X, rows, work, cap, drop, t)
        out = layer_out(work, sizes, L, cap, acts, drop, L)
        batch_loss = loss_and_delta(loss, rows, sizes[L], out, T, labels, w, weight,
                                    delta_buffer(work, sizes, L, cap, 0))
        if isfinite(batch_loss):
            if hits != NULL:
                hits[0] += batch_hits(loss.kind, rows, sizes[L], out, sizes[L], 1, T, kt,
                                      labels, w)
            backward_pass(params, grads, sizes, acts, L, X, rows, work, cap, 0, cfg, t,
                          state1, state2, drop, NULL)
    if isfinite(batch_loss) and cfg.clip_norm > 0:
        clip_and_update(cfg, t, param_count(sizes, L), params, grads, state1, state2)
    return batch_loss
