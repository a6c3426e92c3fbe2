# --------------------------------------------------------------------------------
# Data-parallel training (nncore/distributed.py): a batch's gradient as sums, and
# one optimizer step from a gradient given from outside (summed over processes)
# --------------------------------------------------------------------------------
# (Included at the end of nncore/_kernels.pyx: def entry points that use its
# declarations and all of its parts.)

def grad_sums(const floating[::1] params not None, floating[::1] out not None,
              const Py_ssize_t[::1] sizes not None, const Py_ssize_t[::1] acts not None,
              Py_ssize_t loss, const double[::1] loss_params,
              const floating[:, ::1] X not None, const floating[:, ::1] T,
              const Py_ssize_t[::1] labels, const floating[::1] sample_weight,
              const Py_ssize_t[::1] order, Py_ssize_t start, Py_ssize_t count,
              floating[::1] work not None, Py_ssize_t cap):
    """Weighted sums over one batch: out[:n_params] = sum_i w_i dl_i/dparams,
    out[n_params] = sum_i w_i l_i, out[n_params + 1] = sum_i w_i, out[n_params + 2]
    = the sum of w_i over the rows classified right (batch_hits; 0 for the other
    losses), by the output before any update.

    The batch is rows ``order[start:start + count]`` of X (gathered into ``work``
    as load_batch gathers a batch), or rows ``start`` .. ``start + count - 1`` read
    in place when ``order`` is None. Targets and weights as in ``loss_and_grads``.
    Sums rather than the mean: the sums of several processes' batches add up to the
    sums of their union, whose mean gradient is out[:n_params] / out[n_params + 1].
    ``count`` 0 (or a batch whose weights are all zero) gives zeros. Always the
    row-major passes, whatever the layout train_batches would take, and no
    dropout. ``work`` holds
    ``workspace_size(sizes, cap)`` values, cap >= count; ``out`` n_params + 3 or
    more (values after n_params + 2 are left alone).
    """
    cdef Py_ssize_t L = sizes.shape[0] - 1, n = X.shape[0], K, i, src
    cdef Py_ssize_t n_params = params.shape[0]
    cdef double weight = 0, lsum = 0, hits = 0
    cdef BatchSource batch
    cdef LossConfig lcfg
    cdef const floating* Xb = &X[0, 0]     # (set by load_batch when count > 0)
    cdef const floating* Tb = NULL
    cdef const Py_ssize_t* lb = NULL
    cdef const floating* wb = NULL
    cdef floating* outp
    _check_net(sizes, acts, n_params)
    K = sizes[L]
    if X.shape[1] != sizes[0] or n < 1:
        raise ValueError("kernel: X does not match the first layer")
    _loss_config(loss, loss_params, K, &lcfg)
    _check_targets(&lcfg, n, K, T, labels, sample_weight, False)
    if out.shape[0] < n_params + 3:
        raise ValueError("kernel: out must hold n_params + 3 values")
    if count < 0 or count > cap or cap < 1 or work.shape[0] < workspace_size(sizes, cap):
        raise ValueError("kernel: workspace too small for the batch")
    if start < 0 or start + count > (order.shape[0] if order is not None else n):
        raise ValueError("kernel: batch outside the rows")
    for i in range(start, start + count):
        src = order[i] if order is not None else i
        if src < 0 or src >= n:
            raise ValueError("kernel: order holds an out-of-range row")
        if labels is not None and (labels[src] < 0 or labels[src] >= K):
            raise ValueError("kernel: class label out of range")
    # The batch as load_batch's batch 0 of a source that starts at row ``start``.
    batch.order = &order[start] if order is not None else NULL
    i = 0 if order is not None else start
    batch.X = &X[i, 0]
    batch.T = &T[i, 0] if T is not None else NULL
    batch.labels = &labels[i] if labels is not None else NULL
    batch.w = &sample_weight[i] if sample_weight is not None else NULL
    batch.n = count if order is None else n
    batch.n0 = sizes[0]
    batch.kt = T.shape[1] if T is not None else 0
    batch.batch_size = count
    batch.x_stride = 0
    batch.ahead = 0
    batch.prefetch_next = False
    batch.parts = 1
    _ensure_blas(_may_use_blas(sizes, cap))
    outp = &out[0]
    with nogil:
        if count > 0:
            count = load_batch(&batch, 0, False, &work[0], &sizes[0], L, cap, &Xb, &Tb,
                               &lb, &wb)
            weight = batch_weight(wb, count)
        if weight > 0:
            forward_pass(&params[0], &sizes[0], &acts[0], L, Xb, count, &work[0], cap,
                         NULL, 0)
            # norm 1: the loss and the deltas as weighted sums, not means
            lsum = loss_and_delta(&lcfg, count, K,
                                  layer_A(&work[0], &sizes[0], L, cap, &acts[0], L),
                                  Tb, lb, wb, 1.0,
                                  delta_buffer(&work[0], &sizes[0], L, cap, 0))
            hits = batch_hits(lcfg.kind, count, K,
                              layer_A(&work[0], &sizes[0], L, cap, &acts[0], L), K, 1,
                              Tb, batch.kt, lb, wb)
            backward_pass(<floating*>&params[0], outp, &sizes[0], &acts[0], L, Xb, count,
                          &work[0], cap, 0, NULL, 0, NULL, NULL, NULL, NULL)
        else:
            memset(outp, 0, n_params * sizeof(floating))
        outp[n_params] = <floating>lsum
        outp[n_params + 1] = <floating>weight
        outp[n_params + 2] = <floating>hits


def apply_gradient(floating[::1] params not None, floating[::1] grads not None,
                   floating[::1] state1, floating[::1] state2, double scale,
                   dict optimizer not None, Py_ssize_t step):
    """grads *= scale, then optimizer update number ``step`` (1-based) of every
    parameter from it: the update train_batches applies layer by layer, in one pass
    over the flat arrays (elementwise, so the same arithmetic); with a clip norm in
    the settings, clipped first as train_batches clips it (clip_and_update). ``optimizer``,
    ``state1`` and ``state2`` as train_batches takes them; ``grads`` has the
    parameters' length (a view of the first n_params values of grad_sums's output
    will do)."""
    cdef Py_ssize_t n = params.shape[0], i
    cdef OptimizerConfig cfg = _optimizer_config(optimizer)
    cdef floating s = <floating>scale
    if grads.shape[0] != n or n < 1:
        raise ValueError("kernel: grads does not match params")
    if (cfg.kind != SGD or cfg.momentum != 0) and (state1 is None or state1.shape[0] != n):
        raise ValueError("kernel: optimizer state 1 does not match params")
    if cfg.kind != SGD and (state2 is None or state2.shape[0] != n):
        raise ValueError("kernel: optimizer state 2 does not match params")
    if step < 1:
        raise ValueError("kernel: step must be >= 1")
    with nogil:
        for i in range(n):
            grads[i] *= s
        if cfg.clip_norm > 0:
            clip_and_update(&cfg, step, n, &params[0], &grads[0],
                            &state1[0] if state1 is not None and state1.shape[0] else NULL,
                            &state2[0] if state2 is not None and state2.shape[0] else NULL)
        else:
            optimizer_step(&cfg, step, n, &params[0], &grads[0],
                           &state1[0] if state1 is not None and state1.shape[0] else NULL,
                           &state2[0] if state2 is not None and state2.shape[0] else NULL)
