# --------------------------------------------------------------------------------
# Optimizers: one fused pass per layer's parameters (W_l then b_l, contiguous)
# --------------------------------------------------------------------------------
# (Included by nncore/_kernels.pyx, in the order there: the kernels are one compiled
# module.)

cdef void optimizer_step(const OptimizerConfig* cfg, Py_ssize_t t, Py_ssize_t n,
                         floating* p, const floating* grad, floating* s1,
                         floating* s2) noexcept nogil:
    """One update of all n parameters (optimizer_range), on several threads when the
    array is large: each thread updates its own contiguous part, so the result does
    not depend on the thread count."""
    cdef Py_ssize_t parts = nn_team_size() if n > _OPTIMIZER_PARALLEL_ABOVE else 1
    cdef Py_ssize_t c, lo, hi
    if parts == 1:
        # Not even an OpenMP region: entering one costs microseconds, a small
        # network's whole step.
        optimizer_range(cfg, t, n, p, grad, s1, s2)
        return
    for c in prange(parts, schedule="static", chunksize=1, num_threads=parts):
        lo = c * n // parts
        hi = (c + 1) * n // parts
        optimizer_range(cfg, t, hi - lo, p + lo, grad + lo,
                        s1 + lo if s1 != NULL else NULL,
                        s2 + lo if s2 != NULL else NULL)


cdef void optimizer_range(const OptimizerConfig* cfg, Py_ssize_t t, Py_ssize_t n,
                          floating* p, const floating* grad, floating* s1,
                          floating* s2) noexcept nogil:
    """One update of step number t (1-based), PyTorch's rules (see nncore.reference).

    s1 is SGD's momentum buffer, Adam's first moment, RMSprop's momentum buffer or
    Rprop's previous gradient; s2 is Adam's second moment, RMSprop's square average
    or Rprop's step sizes. Arithmetic in the
    parameters' own precision, like PyTorch; one branch-free loop per case, so each
    vectorizes.
    """
    cdef Py_ssize_t i
    cdef floating g, buf, avg
    cdef floating lr = <floating>cfg.lr, wd = <floating>cfg.weight_decay
    cdef floating mu = <floating>cfg.momentum
    cdef floating b1 = <floating>cfg.beta1, b2 = <floating>cfg.beta2
    cdef floating eps = <floating>cfg.eps, alpha = <floating>cfg.alpha
    cdef floating step_size, inv_sqrt_bc2, decay
    # 1 - beta etc. rounded once to the parameters' precision, as PyTorch (and NumPy,
    # with a Python float) do; written inline, Cython would compute them in double.
    cdef floating one_minus_b1 = <floating>(1 - cfg.beta1)
    cdef floating one_minus_b2 = <floating>(1 - cfg.beta2)
    cdef floating one_minus_alpha = <floating>(1 - cfg.alpha)
    if cfg.kind == SGD:
        if mu == 0:
            for i in range(n):
                p[i] -= lr * (grad[i] + wd * p[i])
        elif t == 1:
            # The momentum buffer starts as the first gradient.
            for i in range(n):
                g = grad[i] + wd * p[i]
                s1[i] = g
                p[i] -= lr * (g + mu * g if cfg.nesterov else g)
        elif cfg.nesterov:
            for i in range(n):
                g = grad[i] + wd * p[i]
                buf = mu * s1[i] + g
                s1[i] = buf
                p[i] -= lr * (g + mu * buf)
        else:
            for i in range(n):
                buf = mu * s1[i] + grad[i] + wd * p[i]
                s1[i] = buf
                p[i] -= lr * buf
    elif cfg.kind == ADAM or cfg.kind == ADAMW:
        # p -= (lr / bc1) m / (sqrt(v) / sqrt(bc2) + eps), bc_k = 1 - beta_k^t.
        step_size = <floating>(cfg.lr / (1 - pow(cfg.beta1, <double>t)))
        inv_sqrt_bc2 = <floating>(1 / sqrt(1 - pow(cfg.beta2, <double>t)))
        if cfg.kind == ADAMW:
            decay = <floating>(1 - cfg.lr * cfg.weight_decay)
            for i in range(n):
                g = grad[i]
                p[i] *= decay
                s1[i] = b1 * s1[i] + one_minus_b1 * g
                s2[i] = b2 * s2[i] + one_minus_b2 * g * g
                p[i] -= step_size * s1[i] / (fsqrt(s2[i]) * inv_sqrt_bc2 + eps)
        else:
            for i in range(n):
                g = grad[i] + wd * p[i]
                s1[i] = b1 * s1[i] + one_minus_b1 * g
                s2[i] = b2 * s2[i] + one_minus_b2 * g * g
                p[i] -= step_size * s1[i] / (fsqrt(s2[i]) * inv_sqrt_bc2 + eps)
    elif cfg.kind == RMSPROP:
        if mu > 0:
            for i in range(n):
                g = grad[i] + wd * p[i]
                s2[i] = alpha * s2[i] + one_minus_alpha * g * g
                s1[i] = mu * s1[i] + g / (fsqrt(s2[i]) + eps)
                p[i] -= lr * s1[i]
        else:
            for i in range(n):
                g = grad[i] + wd * p[i]
                s2[i] = alpha * s2[i] + one_minus_alpha * g * g
                p[i] -= lr * g / (fsqrt(s2[i]) + eps)
    elif cfg.kind == RPROP:
        rprop_range(cfg, t, n, p, grad, s1, s2)


cdef void rprop_range(const OptimizerConfig* cfg, Py_ssize_t t, Py_ssize_t n,
                      floating* p, const floating* grad, floating* prev,
                      floating* step) noexcept nogil:
    """Rprop's update (PyTorch's rule; no weight decay): s = g prev; the step size
    is multiplied by eta_plus (s > 0), eta_minus (s < 0) or 1 (s = 0) and clamped to
    [step_min, step_max]; where s < 0 the gradient counts as 0; p -= sign(g) step;
    prev = g. The step sizes start at lr, the previous gradient at 0 (step t = 1)."""
    cdef Py_ssize_t i
    cdef floating g, s, size
    cdef floating eta_minus = <floating>cfg.eta_minus, eta_plus = <floating>cfg.eta_plus
    cdef floating step_min = <floating>cfg.step_min, step_max = <floating>cfg.step_max
    cdef floating one = 1, zero = 0
    if t == 1:
        for i in range(n):
            prev[i] = 0
            step[i] = <floating>cfg.lr
    for i in range(n):
        g = grad[i]
        s = g * prev[i]
        size = step[i] * (eta_plus if s > 0 else (eta_minus if s < 0 else one))
        size = min(max(size, step_min), step_max)
        step[i] = size
        if s < 0:
            g = 0
        p[i] -= size * (one if g > 0 else (-one if g < 0 else zero))
        prev[i] = g
