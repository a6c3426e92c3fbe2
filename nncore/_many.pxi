# --------------------------------------------------------------------------------
# K networks of one architecture on the same batches (nncore/many.py)
# --------------------------------------------------------------------------------
# (Included at the end of nncore/_kernels.pyx: a def entry point that uses its
# declarations and all of its parts.)

from libc.stdlib cimport malloc, free


cdef int _many_pointers(list arrays, Py_ssize_t K, Py_ssize_t length, floating** out,
                        str what) except -1:
    """out[k] = address of arrays[k] (a float array of ``length`` values, or, with
    length 0, any length, NULL when empty)."""
    cdef floating[::1] view
    cdef Py_ssize_t k
    if len(arrays) != K:
        raise ValueError(f"kernel: {what} must hold one array per network")
    for k in range(K):
        view = arrays[k]
        if length and view.shape[0] != length:
            raise ValueError(f"kernel: {what}[{k}] does not match the parameters")
        out[k] = &view[0] if view.shape[0] else NULL
    return 0


cdef Py_ssize_t _many_gather(const Py_ssize_t* order, Py_ssize_t start, Py_ssize_t rows,
                            const floating* X, Py_ssize_t n0, const floating* T,
                            Py_ssize_t kt, const Py_ssize_t* labels, const floating* w,
                            floating* Xg, Py_ssize_t x_stride, floating* Tg,
                            Py_ssize_t* lg, floating* wg, Py_ssize_t cap) noexcept nogil:
    """Rows ``start`` .. ``start + rows - 1`` of the epoch (in ``order``, or stored
    order when it is NULL) into the gather buffers: X row-major, or feature-major
    with its padding samples zero (``x_stride`` = cap > 0, lanes_step's layout)."""
    cdef Py_ssize_t r, i
    if order != NULL:
        gather_rows(0, rows, 0, 0, order + start, X, n0, T, kt, labels, w, Xg, x_stride,
                    Tg, lg, wg, 0, 0)
    elif x_stride:
        for r in range(rows):
            for i in range(n0):
                Xg[i * x_stride + r] = X[(start + r) * n0 + i]
    if x_stride:
        for i in range(n0):
            for r in range(rows, cap):
                Xg[i * x_stride + r] = 0
    return rows


cdef double _many_step(floating* params, floating* grads, floating* s1, floating* s2,
                       const double* hyper, Py_ssize_t kind, Py_ssize_t step,
                       const Py_ssize_t* sizes, const Py_ssize_t* acts, Py_ssize_t L,
                       Py_ssize_t loss, bint lanes, const floating* Xb, Py_ssize_t rows,
                       const floating* Tb, Py_ssize_t kt, const Py_ssize_t* lb,
                       const floating* wb, double wsum, floating* work,
                       Py_ssize_t cap) noexcept nogil:
    """One network's training step on a prepared batch, as train_batches takes it
    (feature-major: the batch already in the workspace); returns the batch's loss
    (not finite: nothing was updated)."""
    cdef OptimizerConfig cfg
    cdef double batch_loss
    cfg.kind = kind
    cfg.lr = hyper[0]
    cfg.momentum = hyper[1]
    cfg.nesterov = hyper[2] != 0
    cfg.weight_decay = hyper[3]
    cfg.beta1 = hyper[4]
    cfg.beta2 = hyper[5]
    cfg.eps = hyper[6]
    cfg.alpha = hyper[7]
    if lanes:
        return lanes_step(params, grads, sizes, acts, L, loss, rows, work, cap, Tb, kt,
                          lb, wb, wsum, &cfg, step, s1, s2)
    forward_pass(params, sizes, acts, L, Xb, rows, work, cap)
    batch_loss = loss_and_delta(loss, rows, sizes[L], layer_A(work, sizes, L, cap, acts, L - 1),
                                Tb, lb, wb, wsum, delta_buffer(work, sizes, L, cap, 0))
    if isfinite(batch_loss):
        backward_pass(params, grads, sizes, acts, L, Xb, rows, work, cap, 0, &cfg, step,
                      s1, s2)
    return batch_loss


def train_many(list params not None, list grads not None, list state1 not None,
               list state2 not None, const Py_ssize_t[::1] sizes not None,
               const Py_ssize_t[::1] acts not None, Py_ssize_t loss,
               const floating[:, ::1] X not None, const floating[:, ::1] T not None,
               const Py_ssize_t[::1] labels not None,
               const floating[::1] sample_weight not None,
               const Py_ssize_t[::1] order not None, floating[::1] work not None,
               floating[:, ::1] T_batch not None, Py_ssize_t[::1] labels_batch not None,
               floating[::1] w_batch not None, Py_ssize_t batch_size,
               Py_ssize_t first_batch, Py_ssize_t n_batches, Py_ssize_t kind,
               const double[:, ::1] hyper not None, Py_ssize_t[::1] steps not None,
               Py_ssize_t[::1] active not None, double[::1] loss_sums not None,
               double[::1] weight_sums not None):
    """train_batches for K networks of the same layer sizes, activations and loss (and
    optimizer class), on the same batches: each batch is gathered once (into the
    front of ``work`` and the ``*_batch`` buffers, as train_batches gathers it), then
    each active network takes the step train_batches would take on it (the same
    passes in the same layout, so the same bits).

    ``params``, ``grads``: K flat arrays; ``state1``, ``state2``: K state arrays
    (empty where the rule keeps none); ``hyper`` (K, 8): per network lr, momentum,
    nesterov, weight_decay, beta1, beta2, eps, alpha. Per network k, in place:
    ``steps[k]`` counts its updates (the next is number steps[k] + 1),
    ``loss_sums[k]`` and ``weight_sums[k]`` add up (batch loss x batch weight) and
    the batch weights of its finished batches, and ``active[k]`` is 1 while it
    trains: a batch whose loss is not finite sets it to -1 - (that batch's index)
    and leaves the network as before that batch; inactive networks are skipped.

    Returns the number of batches finished (all of them, unless the data ends).
    """
    cdef Py_ssize_t L = sizes.shape[0] - 1, n = X.shape[0], Kn = len(params), K, n0, kt
    cdef Py_ssize_t B = batch_size, b, k, start, rows, r, i, src, done = 0
    cdef Py_ssize_t n_params = len(params[0]) if len(params) else 0, cap, x_stride
    cdef bint gather = order.shape[0] > 0, lanes
    cdef bint has_T = T.shape[0] > 0, has_labels = labels.shape[0] > 0
    cdef bint has_w = sample_weight.shape[0] > 0
    cdef double batch_loss, wsum
    cdef const Py_ssize_t* order_p = &order[0] if gather else NULL
    cdef const floating* T_p = &T[0, 0] if has_T else NULL
    cdef const Py_ssize_t* labels_p = &labels[0] if has_labels else NULL
    cdef const floating* w_p = &sample_weight[0] if has_w else NULL
    cdef floating* Tg = NULL
    cdef Py_ssize_t* lg = NULL
    cdef floating* wg = NULL
    cdef const floating* Xb
    cdef const floating* Tb
    cdef const Py_ssize_t* lb
    cdef const floating* wb
    cdef floating** P = NULL
    cdef floating** G
    cdef floating** S1
    cdef floating** S2

    _check_net(sizes, acts, n_params)
    K = sizes[L]
    n0 = sizes[0]
    if Kn < 1 or hyper.shape[0] != Kn or hyper.shape[1] != 8 or steps.shape[0] != Kn \
            or active.shape[0] != Kn or loss_sums.shape[0] != Kn \
            or weight_sums.shape[0] != Kn:
        raise ValueError("kernel: per-network arrays must have one entry per network")
    if X.shape[1] != n0 or n < 1:
        raise ValueError("kernel: X does not match the first layer")
    _check_targets(loss, n, K, T.shape[0], T.shape[1], labels.shape[0],
                   sample_weight.shape[0], True)
    kt = T.shape[1]
    if kind < SGD or kind > RMSPROP:
        raise ValueError(f"kernel: unknown optimizer code {kind}")
    lanes = lanes_layout(&sizes[0], L)
    cap = lanes_padded(B) if lanes else B
    x_stride = cap if lanes else 0
    if B < 1 or B > 2147483647 or work.shape[0] < workspace_size(sizes, B):
        raise ValueError("kernel: workspace too small for the batch size")
    if first_batch < 0 or n_batches < 0 or (first_batch + n_batches - 1) * B >= n + B:
        raise ValueError("kernel: batch range outside the data")
    if gather and order.shape[0] != n:
        raise ValueError("kernel: order must be a permutation of the rows")
    for i in range(first_batch * B, min(n, (first_batch + n_batches) * B)):
        src = order[i] if gather else i
        if src < 0 or src >= n:
            raise ValueError("kernel: order holds an out-of-range row")
        if has_labels and (labels[src] < 0 or labels[src] >= K):
            raise ValueError("kernel: class label out of range")
    if gather:
        if (has_T and (T_batch.shape[0] < B or T_batch.shape[1] != kt)) or \
                (has_labels and labels_batch.shape[0] < B) or \
                (has_w and w_batch.shape[0] < B):
            raise ValueError("kernel: gather buffers too small")
        Tg = &T_batch[0, 0] if has_T else NULL
        lg = &labels_batch[0] if has_labels else NULL
        wg = &w_batch[0] if has_w else NULL
    P = <floating**>malloc(4 * Kn * sizeof(floating*))
    if P == NULL:
        raise MemoryError("kernel: the networks' pointer table")
    G, S1, S2 = P + Kn, P + 2 * Kn, P + 3 * Kn
    try:
        _many_pointers(params, Kn, n_params, P, "params")
        _many_pointers(grads, Kn, n_params, G, "grads")
        _many_pointers(state1, Kn, 0, S1, "state1")
        _many_pointers(state2, Kn, 0, S2, "state2")
        for k in range(Kn):
            if (kind != SGD or hyper[k, 1] != 0) and (S1[k] == NULL or
                                                      len(state1[k]) != n_params):
                raise ValueError(f"kernel: state1[{k}] does not match the parameters")
            if kind != SGD and (S2[k] == NULL or len(state2[k]) != n_params):
                raise ValueError(f"kernel: state2[{k}] does not match the parameters")
        _ensure_blas(_may_use_blas(sizes, B))
        with nogil:
            for b in range(first_batch, first_batch + n_batches):
                start = b * B
                rows = min(B, n - start)
                if rows <= 0:
                    break
                done += 1
                # The batch, gathered once for all the networks.
                if gather or lanes:
                    _many_gather(order_p, start, rows, &X[0, 0], n0, T_p, kt, labels_p,
                                 w_p, &work[0], x_stride, Tg, lg, wg, cap)
                if gather:
                    Xb, Tb, lb, wb = &work[0], Tg, lg, wg
                else:
                    Xb = &X[start, 0]
                    Tb = T_p + start * kt if has_T else NULL
                    lb = labels_p + start if has_labels else NULL
                    wb = w_p + start if has_w else NULL
                wsum = rows
                if has_w:
                    wsum = 0
                    for r in range(rows):
                        wsum += wb[r]
                if wsum <= 0:
                    continue       # no information: skipped, as train_batches does
                for k in range(Kn):
                    if active[k] != 1:
                        continue
                    batch_loss = _many_step(
                        P[k], G[k], S1[k], S2[k], &hyper[k, 0], kind, steps[k] + 1,
                        &sizes[0], &acts[0], L, loss, lanes, Xb, rows, Tb, kt, lb, wb,
                        wsum, &work[0], cap)
                    if not isfinite(batch_loss):
                        active[k] = -1 - b
                        continue
                    loss_sums[k] += batch_loss * wsum
                    weight_sums[k] += wsum
                    steps[k] += 1
    finally:
        free(P)
    return done
