# --------------------------------------------------------------------------------
# Losses: value and gradient in one pass
# --------------------------------------------------------------------------------
# (Included by nncore/_kernels.pyx, in the order there: the kernels are one compiled
# module.)

cdef double mse_and_delta(Py_ssize_t rows, Py_ssize_t K, const floating* out,
                          const floating* T, const floating* w, double norm,
                          floating* delta) noexcept nogil:
    """loss_and_delta for mse. A loop of its own: in the shared one, the calls of the
    other losses' branches (exp, log1p) kept the running sum in memory, a store and
    a reload per row on the critical path. Several running sums (even and odd rows;
    with unit weights, four) shorten the chain of dependent additions."""
    cdef Py_ssize_t i, j
    cdef double total0 = 0, total1 = 0, total2 = 0, total3 = 0, row, wi = 1.0
    cdef double scale = 2 / (K * norm)
    cdef floating d
    if w == NULL:
        # Unit weights: one flat pass over all rows x K values (the delta loop
        # vectorizes) and four running sums of the squares.
        for i in range(rows * K):
            delta[i] = <floating>(scale * (out[i] - T[i]))
        i = 0
        while i + 4 <= rows * K:
            d = out[i] - T[i]
            total0 += d * d
            d = out[i + 1] - T[i + 1]
            total1 += d * d
            d = out[i + 2] - T[i + 2]
            total2 += d * d
            d = out[i + 3] - T[i + 3]
            total3 += d * d
            i += 4
        while i < rows * K:
            d = out[i] - T[i]
            total0 += d * d
            i += 1
        return ((total0 + total1) + (total2 + total3)) / K / norm
    for i in range(rows):
        if w != NULL:
            wi = w[i]
            scale = 2 * wi / (K * norm)
        row = 0
        for j in range(K):
            d = out[i * K + j] - T[i * K + j]
            row += d * d
            delta[i * K + j] = <floating>(scale * d)
        if i & 1:
            total1 += wi * (row / K)
        else:
            total0 += wi * (row / K)
    return (total0 + total1) / norm


cdef double loss_and_delta(Py_ssize_t loss, Py_ssize_t rows, Py_ssize_t K,
                           const floating* out, const floating* T,
                           const Py_ssize_t* labels, const floating* w, double norm,
                           floating* delta) noexcept nogil:
    """Return sum_i w_i l_i / norm and write delta = d(that)/d(out).

    out is rows x K (the last layer's output; for gaussian_nll K = 2k: means, then log
    variances). T is rows x k float targets (probability rows for cross_entropy) or NULL
    when ``labels`` (rows integer classes) is given. w is NULL for unit weights. ``norm``
    is the sum of the weights of the whole batch, so that chunks add up.
    """
    cdef Py_ssize_t i, j, k
    cdef double total = 0, row, wi, scale, m, s, lse, tsum
    cdef floating z, t, d, e, p, inv, sf, mf
    cdef const floating* o
    cdef const floating* tr
    cdef floating* dr
    if loss == MSE:
        return mse_and_delta(rows, K, out, T, w, norm, delta)
    for i in range(rows):
        o = out + i * K
        dr = delta + i * K
        wi = w[i] if w != NULL else 1.0
        row = 0
        if loss == BINARY_CROSS_ENTROPY:
            tr = T + i * K
            scale = wi / (K * norm)
            for j in range(K):
                z = o[j]
                t = tr[j]
                if floating is float:
                    # (libm's: in this loop, which does not vectorize, its two calls
                    # measured 1.1-1.2x faster than nn_exp_neg_f64 and
                    # nn_log1p_unit_f64)
                    row += (z if z > 0 else 0) - z * t + log1p(exp(-fabs(z)))
                else:
                    row += ((z if z > 0 else 0) - z * t
                            + nn_log1p_unit_f64(nn_exp_neg_f64(-fabs(z))))
                dr[j] = <floating>(scale * (sigmoid(z) - t))
            row /= K
        elif loss == CROSS_ENTROPY:
            # Max, exps and their sum in the outputs' precision (in double, each
            # class would cost conversions); exp(o_j - m) is kept in the delta row:
            # softmax_j is that over s, which saves a second exp per class.
            mf = o[0]
            for j in range(1, K):
                if o[j] > mf:
                    mf = o[j]
            sf = 0
            for j in range(K):
                e = fast_exp(o[j] - mf)
                dr[j] = e
                sf = sf + e
            m = mf
            s = sf
            if floating is float:
                # The float32 path's log in float32 (libm's logf: several times
                # faster than log, and correctly rounded for float32).
                lse = m + logf(<float>s)
            else:
                lse = m + log(s)
            scale = wi / norm
            if labels != NULL:
                inv = <floating>(scale / s)
                for j in range(K):
                    dr[j] = inv * dr[j]
                row = lse - o[labels[i]]
                dr[labels[i]] -= <floating>scale
            else:
                tr = T + i * K
                tsum = 0
                for j in range(K):
                    tsum += tr[j]
                    row += tr[j] * (lse - o[j])
                for j in range(K):
                    dr[j] = <floating>(scale * (dr[j] / s * tsum - tr[j]))
        elif loss == GAUSSIAN_NLL:
            k = K // 2
            tr = T + i * k
            scale = wi / (k * norm)
            for j in range(k):
                d = tr[j] - o[j]
                e = exp(-o[k + j])
                row += 0.5 * (o[k + j] + d * d * e)
                dr[j] = <floating>(-scale * d * e)
                dr[k + j] = <floating>(0.5 * scale * (1 - d * d * e))
            row /= k
        total += wi * row
    return total / norm
