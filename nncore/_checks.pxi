# --------------------------------------------------------------------------------
# Checks of the def entry points: every length, index and code the nogil code trusts
# --------------------------------------------------------------------------------
# (Included by nncore/_kernels.pyx, in the order there: the kernels are one compiled
# module. These hold the GIL and raise; the user-facing validation, with messages
# that name the argument, is in the Python layer.)

cdef int _check_net(const Py_ssize_t[::1] sizes, const Py_ssize_t[::1] acts,
                    Py_ssize_t n_params) except -1:
    cdef Py_ssize_t l, L = sizes.shape[0] - 1
    if L < 1 or acts.shape[0] != L:
        raise ValueError("kernel: sizes must have one entry more than acts")
    for l in range(L + 1):
        if sizes[l] < 1 or sizes[l] > 2147483647:
            raise ValueError("kernel: layer sizes must be in [1, 2**31 - 1] (BLAS sizes)")
    for l in range(L):
        if acts[l] < 0 or acts[l] >= N_ACTIVATIONS:
            raise ValueError(f"kernel: unknown activation code {acts[l]}")
    if n_params != param_count(&sizes[0], L):
        raise ValueError("kernel: parameter array length does not match the layer sizes")
    return 0


cdef int _loss_config(Py_ssize_t loss, const double[::1] params, Py_ssize_t K,
                      LossConfig* cfg) except -1:
    """Fill ``cfg`` from a loss code and its parameters (``Loss._kernel_params``):
    huber's delta, or the quantiles (None for a loss without parameters), for an
    output of width K."""
    cdef Py_ssize_t i, n = params.shape[0] if params is not None else 0
    if loss < 0 or loss >= N_LOSSES:
        raise ValueError(f"kernel: unknown loss code {loss}")
    memset(cfg, 0, sizeof(LossConfig))
    cfg.kind = loss
    cfg.n_q = 1
    if loss == HUBER:
        if n != 1 or not params[0] > 0:
            raise ValueError("kernel: huber takes one parameter, delta > 0")
        cfg.delta = params[0]
    elif loss == QUANTILE:
        if n < 1 or K % n:
            raise ValueError("kernel: the output width must be a multiple of the number "
                             "of quantiles")
        for i in range(n):
            if not 0 < params[i] < 1:
                raise ValueError("kernel: quantiles must be in (0, 1)")
        cfg.q = &params[0]
        cfg.n_q = n
    elif n:
        raise ValueError("kernel: this loss takes no parameters")
    if loss == GAUSSIAN_NLL and K % 2:
        raise ValueError("kernel: gaussian_nll needs an even output width")
    return 0


cdef int _check_targets(const LossConfig* loss, Py_ssize_t n, Py_ssize_t K,
                        const floating[:, ::1] T, const Py_ssize_t[::1] labels,
                        const floating[::1] w, bint all_labels) except -1:
    """The targets of n rows for an output of width K: exactly one of T (n x
    target_width floats) and labels (n classes, cross_entropy only); w None or n
    weights. ``all_labels``: check that every label is in range (train_batches
    checks the rows it reads instead)."""
    if (T is None) == (labels is None):
        raise ValueError("kernel: give float targets or integer labels (one of them)")
    if labels is not None:
        if loss.kind != CROSS_ENTROPY or labels.shape[0] != n:
            raise ValueError("kernel: integer labels do not match the batch")
        if all_labels and not _labels_in_range(labels, K):
            raise ValueError("kernel: class label out of range")
    else:
        if T.shape[0] != n:
            raise ValueError("kernel: targets do not match the batch")
        if T.shape[1] != target_width(loss, K):
            raise ValueError("kernel: target width does not match the output")
    if w is not None and w.shape[0] != n:
        raise ValueError("kernel: sample_weight does not match the batch")
    return 0


cdef bint _labels_in_range(const Py_ssize_t[::1] labels, Py_ssize_t K) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(labels.shape[0]):
        if labels[i] < 0 or labels[i] >= K:
            return False
    return True


cdef OptimizerConfig _optimizer_config(dict settings) except *:
    """The OptimizerConfig of an optimizer's settings (``Optimizer._kernel_settings``):
    the fields they name, the others 0 (fields their rule does not read)."""
    cdef OptimizerConfig cfg
    cdef dict fields
    memset(&cfg, 0, sizeof(cfg))
    fields = cfg                    # the struct as a dict: every field, all 0
    unknown = set(settings) - set(fields)
    if unknown:
        raise ValueError(f"kernel: unknown optimizer settings {sorted(unknown)}")
    fields.update(settings)
    cfg = fields
    if cfg.kind < 0 or cfg.kind >= N_OPTIMIZERS:
        raise ValueError(f"kernel: unknown optimizer code {cfg.kind}")
    return cfg


cdef int _check_training(floating[::1] params, floating[::1] grads,
                         const Py_ssize_t[::1] sizes, const Py_ssize_t[::1] acts,
                         const LossConfig* loss, const floating[:, ::1] X,
                         const floating[:, ::1] T, const Py_ssize_t[::1] labels,
                         const floating[::1] w, const Py_ssize_t[::1] order,
                         floating[::1] work, Py_ssize_t batch_size, Py_ssize_t first_batch,
                         Py_ssize_t n_batches, const OptimizerConfig* cfg,
                         floating[::1] state1, floating[::1] state2,
                         const double[::1] dropout) except -1:
    """train_batches's checks of every length and index its nogil code trusts (the
    loss's parameters were checked by _loss_config)."""
    cdef Py_ssize_t n = X.shape[0], n_params = params.shape[0], K, i, src
    cdef bint needs_state1 = cfg.kind != SGD or cfg.momentum != 0
    _check_net(sizes, acts, n_params)
    K = sizes[sizes.shape[0] - 1]
    if X.shape[1] != sizes[0] or n < 1:
        raise ValueError("kernel: X does not match the first layer")
    _check_targets(loss, n, K, T, labels, w, False)
    if dropout is not None:
        if dropout.shape[0] != acts.shape[0]:
            raise ValueError("kernel: dropout needs one rate per layer")
        for i in range(dropout.shape[0]):
            if not 0 <= dropout[i] < 1:
                raise ValueError("kernel: dropout rates must be in [0, 1)")
    if grads.shape[0] != n_params:
        raise ValueError("kernel: grads does not match params")
    if needs_state1 and (state1 is None or state1.shape[0] != n_params):
        raise ValueError("kernel: optimizer state 1 does not match params")
    if cfg.kind != SGD and (state2 is None or state2.shape[0] != n_params):
        raise ValueError("kernel: optimizer state 2 does not match params")
    if batch_size < 1 or batch_size > 2147483647 or \
            work.shape[0] < workspace_size(sizes, batch_size):
        raise ValueError("kernel: workspace too small for the batch size")
    if first_batch < 0 or n_batches < 0 or \
            (first_batch + n_batches - 1) * batch_size >= n + batch_size:
        raise ValueError("kernel: batch range outside the data")
    if order is not None and order.shape[0] != n:
        raise ValueError("kernel: order must be a permutation of the rows")
    # Every row this call reads, and its label, must be in range: checked over this
    # call's rows only, so the cost is proportional to the work done.
    for i in range(first_batch * batch_size,
                   min(n, (first_batch + n_batches) * batch_size)):
        src = order[i] if order is not None else i
        if src < 0 or src >= n:
            raise ValueError("kernel: order holds an out-of-range row")
        if labels is not None and (labels[src] < 0 or labels[src] >= K):
            raise ValueError("kernel: class label out of range")
    return 0


ctypedef fused float_bits:
    uint32_t
    uint64_t


def all_finite_bits(const float_bits[::1] bits not None):
    """Whether no value of a float32 array (viewed as uint32) or a float64 array
    (viewed as uint64) is NaN or infinite: those are the values whose exponent bits
    are all ones.

    For the input validation of large arrays (``nncore._validation``): the test has
    no branch within a block of 4,096 values, so the compiler vectorizes it, and it
    allocates nothing (``np.isfinite(X).all()`` writes a boolean per value first). A
    block holding a bad value ends the scan.
    """
    cdef Py_ssize_t n = bits.shape[0], start, end, i
    cdef float_bits mask, bad = 0
    if float_bits is uint32_t:
        mask = 0x7f800000u
    else:
        mask = 0x7ff0000000000000u
    with nogil:
        for start in range(0, n, 4096):
            end = min(n, start + 4096)
            for i in range(start, end):
                bad |= (bits[i] & mask) == mask
            if bad:
                break
    return not bad
