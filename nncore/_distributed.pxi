# --------------------------------------------------------------------------------
# Data-parallel training (nncore/distributed.py): a batch's gradient as sums, and
# one optimizer step from a gradient given from outside (summed over processes)
# --------------------------------------------------------------------------------
# (Included at the end of nncore/_kernels.pyx: def entry points that use its
# declarations and all of its parts.)

def grad_sums(const floating[::1] params not None, floating[::1] out not None,
              const Py_ssize_t[::1] sizes not None, const Py_ssize_t[::1] acts not None,
              Py_ssize_t loss, const floating[:, ::1] X not None,
              const floating[:, ::1] T not None, const Py_ssize_t[::1] labels not None,
              const floating[::1] sample_weight not None,
              const Py_ssize_t[::1] order not None, Py_ssize_t start, Py_ssize_t count,
              floating[::1] work not None, Py_ssize_t cap,
              floating[:, ::1] T_batch not None, Py_ssize_t[::1] labels_batch not None,
              floating[::1] w_batch not None):
    """Weighted sums over one batch: out[:n_params] = sum_i w_i dl_i/dparams,
    out[n_params] = sum_i w_i l_i, out[n_params + 1] = sum_i w_i.

    The batch is rows ``order[start:start + count]`` of X (gathered into ``work``
    and the ``*_batch`` buffers, of at least ``count`` rows), or rows ``start`` ..
    ``start + count - 1`` read in place when ``order`` is empty. Sums rather than
    the mean: the sums of several processes' batches add up to the sums of their
    union, whose mean gradient is out[:n_params] / out[n_params + 1]. ``count`` 0
    (or a batch whose weights are all zero) gives zeros. Always the row-major
    passes, whatever the layout train_batches would take. ``work`` holds
    ``workspace_size(sizes, cap)`` values, cap >= count; ``out`` n_params + 2 or
    more (values after n_params + 1 are left alone).
    """
    cdef Py_ssize_t L = sizes.shape[0] - 1, n = X.shape[0], K, n0, kt, i, src
    cdef Py_ssize_t n_params = params.shape[0]
    cdef bint gather = order.shape[0] > 0
    cdef bint has_T = T.shape[0] > 0, has_labels = labels.shape[0] > 0
    cdef bint has_w = sample_weight.shape[0] > 0
    cdef double wsum = 0, lsum = 0
    cdef const floating* Xb = &X[0, 0]     # (set below when count > 0)
    cdef const floating* Tb = NULL
    cdef const Py_ssize_t* lb = NULL
    cdef const floating* wb = NULL
    cdef floating* outp
    _check_net(sizes, acts, n_params)
    K = sizes[L]
    n0 = sizes[0]
    if X.shape[1] != n0 or n < 1:
        raise ValueError("kernel: X does not match the first layer")
    _check_targets(loss, n, K, T.shape[0], T.shape[1], labels.shape[0],
                   sample_weight.shape[0], True)
    kt = T.shape[1]
    if out.shape[0] < n_params + 2:
        raise ValueError("kernel: out must hold n_params + 2 values")
    if count < 0 or count > cap or cap < 1 or work.shape[0] < workspace_size(sizes, cap):
        raise ValueError("kernel: workspace too small for the batch")
    if start < 0 or start + count > (order.shape[0] if gather else n):
        raise ValueError("kernel: batch outside the rows")
    if gather and ((has_T and (T_batch.shape[0] < count or T_batch.shape[1] != kt)) or
                   (has_labels and labels_batch.shape[0] < count) or
                   (has_w and w_batch.shape[0] < count)):
        raise ValueError("kernel: gather buffers too small")
    for i in range(start, start + count):
        src = order[i] if gather else i
        if src < 0 or src >= n:
            raise ValueError("kernel: order holds an out-of-range row")
        if has_labels and (labels[src] < 0 or labels[src] >= K):
            raise ValueError("kernel: class label out of range")
    _ensure_blas(_may_use_blas(sizes, cap))
    outp = &out[0]
    with nogil:
        if count > 0 and gather:
            gather_rows(0, count, 0, 0, &order[start], &X[0, 0], n0,
                        &T[0, 0] if has_T else NULL, kt,
                        &labels[0] if has_labels else NULL,
                        &sample_weight[0] if has_w else NULL, &work[0], 0,
                        &T_batch[0, 0] if has_T else NULL,
                        &labels_batch[0] if has_labels else NULL,
                        &w_batch[0] if has_w else NULL, 0, 0)
            Xb = &work[0]
            Tb = &T_batch[0, 0] if has_T else NULL
            lb = &labels_batch[0] if has_labels else NULL
            wb = &w_batch[0] if has_w else NULL
        elif count > 0:
            Xb = &X[start, 0]
            Tb = &T[start, 0] if has_T else NULL
            lb = &labels[start] if has_labels else NULL
            wb = &sample_weight[start] if has_w else NULL
        if has_w:
            for i in range(count):
                wsum += wb[i]
        else:
            wsum = count
        if wsum > 0:
            forward_pass(&params[0], &sizes[0], &acts[0], L, Xb, count, &work[0], cap)
            # norm 1: the loss and the deltas as weighted sums, not means
            lsum = loss_and_delta(loss, count, K,
                                  layer_A(&work[0], &sizes[0], L, cap, &acts[0], L - 1),
                                  Tb, lb, wb, 1.0,
                                  delta_buffer(&work[0], &sizes[0], L, cap, 0))
            backward_pass(<floating*>&params[0], outp, &sizes[0], &acts[0], L, Xb, count,
                          &work[0], cap, 0, NULL, 0, NULL, NULL)
        else:
            memset(outp, 0, n_params * sizeof(floating))
        outp[n_params] = <floating>lsum
        outp[n_params + 1] = <floating>wsum


def apply_gradient(floating[::1] params not None, floating[::1] grads not None,
                   floating[::1] state1 not None, floating[::1] state2 not None,
                   double scale, Py_ssize_t kind, double lr, double momentum,
                   bint nesterov, double weight_decay, double beta1, double beta2,
                   double eps, double alpha, Py_ssize_t step):
    """grads *= scale, then optimizer update number ``step`` (1-based) of every
    parameter from it: the update train_batches applies layer by layer, in one pass
    over the flat arrays (elementwise, so the same arithmetic). The hyperparameters
    and state arrays as train_batches takes them; ``grads`` has the parameters'
    length (a view of the first n_params values of grad_sums's output will do)."""
    cdef Py_ssize_t n = params.shape[0], i
    cdef OptimizerConfig cfg
    cdef floating s = <floating>scale
    if grads.shape[0] != n:
        raise ValueError("kernel: grads does not match params")
    if kind < SGD or kind > RMSPROP:
        raise ValueError(f"kernel: unknown optimizer code {kind}")
    if (kind != SGD or momentum != 0) and state1.shape[0] != n:
        raise ValueError("kernel: optimizer state 1 does not match params")
    if kind != SGD and state2.shape[0] != n:
        raise ValueError("kernel: optimizer state 2 does not match params")
    if step < 1 or n < 1:
        raise ValueError("kernel: step must be >= 1 and params not empty")
    cfg.kind = kind
    cfg.lr = lr
    cfg.momentum = momentum
    cfg.nesterov = nesterov
    cfg.weight_decay = weight_decay
    cfg.beta1 = beta1
    cfg.beta2 = beta2
    cfg.eps = eps
    cfg.alpha = alpha
    with nogil:
        for i in range(n):
            grads[i] *= s
        optimizer_step(&cfg, step, n, &params[0], &grads[0],
                       &state1[0] if state1.shape[0] else NULL,
                       &state2[0] if state2.shape[0] else NULL)
