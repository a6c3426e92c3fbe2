# --------------------------------------------------------------------------------
# K networks of one architecture on the same batches (nncore/many.py)
# --------------------------------------------------------------------------------
# (Included at the end of nncore/_kernels.pyx: a def entry point that uses its
# declarations and all of its parts.)

from libc.stdlib cimport malloc, free


cdef int _many_pointers(list arrays, Py_ssize_t K, Py_ssize_t length, floating** out,
                        str what) except -1:
    """out[k] = the address of arrays[k], a float array of ``length`` values; None or
    an empty array (a state the rule does not keep) gives NULL."""
    cdef floating[::1] view
    cdef Py_ssize_t k
    if len(arrays) != K:
        raise ValueError(f"kernel: {what} must hold one array per network")
    for k in range(K):
        out[k] = NULL
        if arrays[k] is None:
            continue
        view = arrays[k]
        if view.shape[0] and view.shape[0] != length:
            raise ValueError(f"kernel: {what}[{k}] does not match the parameters")
        if view.shape[0]:
            out[k] = &view[0]
    return 0


cdef inline Py_ssize_t many_group(Py_ssize_t n_params, Py_ssize_t value_bytes,
                                  Py_ssize_t arrays, Py_ssize_t K) noexcept nogil:
    """How many networks fit_many gives each train_many call, so that their arrays
    stay in cache from one batch to the next: as many as keep their ``arrays``
    arrays of ``n_params`` values (parameters, gradients, optimizer state) in half
    the L2 cache, as the products' blocks take half of it (nncore/csrc/blocking.h);
    at least 1, at most K.

    A batch loaded once then serves the whole group, each network finding its own
    arrays in L2 at its next batch. Networks whose arrays together exceed that
    share would push each other out of cache at every step (K networks' arrays
    from memory, instead of one's from L3 as in K separate fits): they take the
    chunk's batches in smaller groups, each batch loaded again for each group, as
    fit loads it."""
    cdef double per_network = <double>n_params * value_bytes * arrays
    cdef double fit = (nn_blocking.l2 // 2) / per_network if per_network > 0 else K
    if fit >= K:
        return K
    return max(1, <Py_ssize_t>fit)


def many_group_size(Py_ssize_t n_params, Py_ssize_t itemsize, Py_ssize_t arrays,
                    Py_ssize_t K):
    """The networks per train_many call that fit_many makes (many_group): K networks
    of ``n_params`` parameters of ``itemsize`` bytes, with ``arrays`` arrays of that
    length each (parameters, gradients and the optimizer's non-empty states)."""
    if n_params < 0 or itemsize < 1 or arrays < 1 or K < 1:
        raise ValueError(f"many_group_size: bad sizes {(n_params, itemsize, arrays, K)}")
    return many_group(n_params, itemsize, arrays, K)


def train_many(list params not None, list grads not None, list state1 not None,
               list state2 not None, const Py_ssize_t[::1] sizes not None,
               const Py_ssize_t[::1] acts not None, Py_ssize_t loss,
               const double[::1] loss_params, const floating[:, ::1] X not None,
               const floating[:, ::1] T,
               const Py_ssize_t[::1] labels, const floating[::1] sample_weight,
               const Py_ssize_t[::1] order, floating[::1] work not None,
               Py_ssize_t batch_size, Py_ssize_t first_batch, Py_ssize_t n_batches,
               list optimizers not None, Py_ssize_t[::1] steps not None,
               Py_ssize_t[::1] active not None, double[::1] loss_sums not None,
               double[::1] weight_sums not None, double[::1] hits,
               list dropout not None, const uint64_t[::1] seeds not None):
    """train_batches for K networks of the same layer sizes, activations and loss, on
    the same batches: each batch is loaded once (load_batch), then each active network
    takes train_step on it, as train_batches would (the same passes in the same
    layout, so the same bits).

    ``params``, ``grads``: K flat arrays; ``state1``, ``state2``: K state arrays
    (None where the rule keeps none); ``optimizers``: K settings dicts as
    train_batches takes them (one update rule). Per network k, in place:
    ``steps[k]`` counts its updates (the next is number steps[k] + 1),
    ``loss_sums[k]`` and ``weight_sums[k]`` add up (batch loss x batch weight) and
    the batch weights of its finished batches, ``hits[k]`` (unless ``hits`` is None)
    their weighted rows classified right (as train_batches counts them), and
    ``active[k]`` is 1 while it trains (``dropout[k]``: network k's dropout rates or
    None, its masks drawn from ``seeds[k]``, as train_batches takes them): a batch
    whose loss is not finite sets it to -1 - (that batch's index) and leaves the
    network as before that batch; other networks are skipped. (fit_many passes
    groups of networks whose arrays stay in cache together: many_group_size.)

    Returns the number of batches finished (all of them, unless the data ends).
    """
    cdef Py_ssize_t L = sizes.shape[0] - 1, Kn = len(params), b, k, rows, done = 0
    cdef Py_ssize_t n_params = len(params[0]) if Kn else 0
    cdef bint fm = fm_layout(&sizes[0], L)
    cdef Py_ssize_t cap = fm_padded(batch_size) if fm else batch_size
    cdef double batch_loss, weight
    cdef BatchSource src
    cdef const floating* Xb
    cdef const floating* Tb
    cdef const Py_ssize_t* lb
    cdef const floating* wb
    cdef OptimizerConfig* cfg = NULL
    cdef Dropout* drop = NULL
    cdef LossConfig lcfg
    cdef const double[::1] rates
    cdef floating** P = NULL
    cdef floating** G
    cdef floating** S1
    cdef floating** S2
    cdef bint prefetch
    cdef floating[::1] p_k, g_k, s1_k, s2_k
    cdef double* hits_p = NULL
    if Kn < 1 or len(optimizers) != Kn or steps.shape[0] != Kn or \
            active.shape[0] != Kn or loss_sums.shape[0] != Kn or \
            weight_sums.shape[0] != Kn or (hits is not None and hits.shape[0] != Kn) or \
            len(dropout) != Kn or seeds.shape[0] != Kn:
        raise ValueError("kernel: per-network arguments must have one entry per network")
    if hits is not None:
        hits_p = &hits[0]
    P = <floating**>malloc(4 * Kn * sizeof(floating*))
    cfg = <OptimizerConfig*>malloc(Kn * sizeof(OptimizerConfig))
    drop = <Dropout*>malloc(Kn * sizeof(Dropout))
    if P == NULL or cfg == NULL or drop == NULL:
        free(P)
        free(cfg)
        free(drop)
        raise MemoryError("kernel: the networks' tables")
    G, S1, S2 = P + Kn, P + 2 * Kn, P + 3 * Kn
    try:
        _loss_config(loss, loss_params, sizes[L], &lcfg)
        _many_pointers(params, Kn, n_params, P, "params")
        _many_pointers(grads, Kn, n_params, G, "grads")
        _many_pointers(state1, Kn, n_params, S1, "state1")
        _many_pointers(state2, Kn, n_params, S2, "state2")
        for k in range(Kn):
            cfg[k] = _optimizer_config(optimizers[k])
            if cfg[k].kind != cfg[0].kind:
                raise ValueError("kernel: the networks' optimizers differ in update rule")
            p_k, g_k, s1_k, s2_k = params[k], grads[k], state1[k], state2[k]
            rates = dropout[k]
            if rates is not None and rates.shape[0] != L:
                raise ValueError(f"kernel: dropout[{k}] must hold one rate per layer")
            if rates is not None:
                for b in range(L):
                    if not 0 <= rates[b] < 1:
                        raise ValueError(f"kernel: dropout[{k}] rates must be in [0, 1)")
            drop[k].rates = &rates[0] if rates is not None else NULL
            drop[k].seed = seeds[k]
            if k == 0:
                # every check train_batches makes, the data's included
                _check_training(p_k, g_k, sizes, acts, &lcfg, X, T, labels,
                                sample_weight, order, work, batch_size, first_batch,
                                n_batches, &cfg[k], s1_k, s2_k, rates)
            elif p_k.shape[0] != n_params or g_k.shape[0] != n_params or (
                    (cfg[k].kind != SGD or cfg[k].momentum != 0) and S1[k] == NULL) or (
                    cfg[k].kind != SGD and S2[k] == NULL):
                # (the lengths of non-empty states: _many_pointers)
                raise ValueError(f"kernel: network {k}'s arrays do not match network 0's")
        src.X = &X[0, 0]
        src.T = &T[0, 0] if T is not None else NULL
        src.labels = &labels[0] if labels is not None else NULL
        src.w = &sample_weight[0] if sample_weight is not None else NULL
        src.order = &order[0] if order is not None else NULL
        src.n = X.shape[0]
        src.n0 = sizes[0]
        src.kt = T.shape[1] if T is not None else 0
        src.batch_size = batch_size
        src.x_stride = cap if fm else 0
        # As train_batches (see there): prefetch rows scattered beyond the L2 cache.
        prefetch = order is not None and <double>src.n * src.n0 * sizeof(floating) > 1048576
        src.ahead = _GATHER_AHEAD if prefetch else 0
        src.prefetch_next = prefetch and batch_size * src.n0 * sizeof(floating) <= 65536
        src.parts = nn_team_size()
        _ensure_blas(_may_use_blas(sizes, batch_size))
        with nogil:
            for b in range(first_batch, first_batch + n_batches):
                rows = load_batch(&src, b, b + 1 < first_batch + n_batches, &work[0],
                                  &sizes[0], L, cap, &Xb, &Tb, &lb, &wb)
                if rows == 0:
                    break
                done += 1
                weight = batch_weight(wb, rows)
                if weight <= 0:
                    continue       # no information: skipped, as train_batches does
                for k in range(Kn):
                    if active[k] != 1:
                        continue
                    batch_loss = train_step(P[k], G[k], &sizes[0], &acts[0], L, &lcfg, fm,
                                            Xb, rows, Tb, src.kt, lb, wb, weight,
                                            &work[0], cap, &cfg[k], steps[k] + 1, S1[k],
                                            S2[k],
                                            &drop[k] if drop[k].rates != NULL else NULL,
                                            hits_p + k if hits_p != NULL else NULL)
                    if not isfinite(batch_loss):
                        active[k] = -1 - b
                        continue
                    loss_sums[k] += batch_loss * weight
                    weight_sums[k] += weight
                    steps[k] += 1
    finally:
        free(P)
        free(cfg)
        free(drop)
    return done
