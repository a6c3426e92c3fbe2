# --------------------------------------------------------------------------------
# Network passes over one batch
# --------------------------------------------------------------------------------
# (Included by nncore/_kernels.pyx, in the order there: the kernels are one compiled
# module.)

cdef inline Py_ssize_t param_count(const Py_ssize_t* sizes, Py_ssize_t L) noexcept nogil:
    cdef Py_ssize_t l, n = 0
    for l in range(L):
        n += sizes[l] * sizes[l + 1] + sizes[l + 1]
    return n


cdef inline Py_ssize_t max_width(const Py_ssize_t* sizes, Py_ssize_t L) noexcept nogil:
    cdef Py_ssize_t l, m = 0
    for l in range(1, L + 1):
        if sizes[l] > m:
            m = sizes[l]
    return m


cdef inline floating* layer_Z(floating* work, const Py_ssize_t* sizes, Py_ssize_t L,
                              Py_ssize_t cap, Py_ssize_t l) noexcept nogil:
    """Pre-activation buffer of layer l in a workspace sized for ``cap`` rows."""
    cdef Py_ssize_t i, off = cap * sizes[0]
    for i in range(l):
        off += 2 * cap * sizes[i + 1]
    return work + off


cdef inline floating* layer_A(floating* work, const Py_ssize_t* sizes, Py_ssize_t L,
                              Py_ssize_t cap, const Py_ssize_t* acts,
                              Py_ssize_t l) noexcept nogil:
    cdef floating* Z = layer_Z(work, sizes, L, cap, l)
    return Z if in_place(acts[l]) else Z + cap * sizes[l + 1]


cdef inline floating* delta_buffer(floating* work, const Py_ssize_t* sizes, Py_ssize_t L,
                                   Py_ssize_t cap, Py_ssize_t which) noexcept nogil:
    return layer_Z(work, sizes, L, cap, L) + which * cap * max_width(sizes, L)


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


cdef void forward_pass(const floating* params, const Py_ssize_t* sizes,
                       const Py_ssize_t* acts, Py_ssize_t L, const floating* X,
                       Py_ssize_t rows, floating* work, Py_ssize_t cap) noexcept nogil:
    """A_l = f_l(A_{l-1} W_l + b_l) for every layer; A_{-1} = X (rows x sizes[0])."""
    cdef Py_ssize_t l, fi, fo
    cdef const floating* A_prev = X
    cdef const floating* W = params
    cdef floating* Z
    cdef floating* A
    for l in range(L):
        fi = sizes[l]
        fo = sizes[l + 1]
        Z = layer_Z(work, sizes, L, cap, l)
        A = layer_A(work, sizes, L, cap, acts, l)
        matmul(False, False, rows, fo, fi, A_prev, W, 0, Z,
               gemm_scratch(work, sizes, L, cap))
        bias_activation(acts[l], rows, fo, W + fi * fo, Z, A)
        A_prev = A
        W += fi * fo + fo


# The optimizer and its hyperparameters (optimizer_range, in _optimizers.pxi, applies
# them).
ctypedef struct OptimizerConfig:
    Py_ssize_t kind
    double lr
    double momentum
    bint nesterov
    double weight_decay
    double beta1
    double beta2
    double eps
    double alpha


cdef void backward_pass(floating* params, floating* grads, const Py_ssize_t* sizes,
                        const Py_ssize_t* acts, Py_ssize_t L, const floating* X,
                        Py_ssize_t rows, floating* work, Py_ssize_t cap,
                        floating beta, const OptimizerConfig* cfg, Py_ssize_t t,
                        floating* state1, floating* state2) noexcept nogil:
    """Gradients from the output delta (in delta buffer 0, dLoss/dA_{L-1}).

    delta_l = dLoss/dA_l * f_l'(Z_l); dW_l = A_{l-1}^T delta_l; db_l = sum_rows delta_l;
    dLoss/dA_{l-1} = delta_l W_l^T. With beta = 1 the gradients are added to ``grads``.

    With an optimizer ``cfg`` (else NULL), layer l's parameters take update number t
    as soon as dLoss/dA_{l-1}, the last use of W_l, is done: the same arithmetic as
    one pass after the backward pass (the update is elementwise), but the layer's
    gradient is still in cache, and the first layer, updated last, is in cache for
    the next batch's forward pass.
    """
    cdef Py_ssize_t l, fi, fo, off
    cdef Py_ssize_t which = 0
    cdef floating* D = delta_buffer(work, sizes, L, cap, 0)
    cdef floating* D_next
    cdef floating* dW
    cdef floating* db
    cdef const floating* A_prev
    cdef floating* scratch = gemm_scratch(work, sizes, L, cap)
    off = param_count(sizes, L)
    for l in range(L - 1, -1, -1):
        fi = sizes[l]
        fo = sizes[l + 1]
        off -= fi * fo + fo
        activation_backward(acts[l], rows * fo, layer_Z(work, sizes, L, cap, l),
                            layer_A(work, sizes, L, cap, acts, l), D)
        A_prev = X if l == 0 else layer_A(work, sizes, L, cap, acts, l - 1)
        dW = grads + off
        db = dW + fi * fo
        matmul(True, False, fi, fo, rows, A_prev, D, beta, dW, scratch)
        if floating is float:
            nn_colsums_f32(rows, fo, D, db, beta != 0)
        else:
            nn_colsums_f64(rows, fo, D, db, beta != 0)
        if l > 0:
            which = 1 - which
            D_next = delta_buffer(work, sizes, L, cap, which)
            matmul(False, True, rows, fi, fo, D, params + off, 0, D_next, scratch)
            D = D_next
        if cfg != NULL:
            optimizer_step(cfg, t, fi * fo + fo, params + off, grads + off,
                           state1 + off if state1 != NULL else NULL,
                           state2 + off if state2 != NULL else NULL)
