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


cdef inline Py_ssize_t target_width(const LossConfig* loss, Py_ssize_t K) noexcept nogil:
    """Columns of a target row for an output of K columns: K/2 for gaussian_nll (K/2
    means, K/2 log variances), K/m for m quantiles, else K."""
    if loss.kind == GAUSSIAN_NLL:
        return K // 2
    if loss.kind == QUANTILE:
        return K // loss.n_q
    return K


cdef double elementwise_and_delta(const LossConfig* loss, Py_ssize_t rows, Py_ssize_t K,
                                  const floating* out, const floating* T,
                                  const floating* w, double norm,
                                  floating* delta) noexcept nogil:
    """loss_and_delta for the losses that are a mean over the output's elements of a
    function of one output z and its target t: mae |z - t|; huber (delta c) 0.5 d^2
    for |d| <= c, else c (|d| - c/2), d = z - t; poisson exp(z) - t z (z the log
    rate); quantile q max(t - z, 0) + (1 - q) max(z - t, 0), with the m quantiles of
    ``loss.q`` taken in turn along the row (output column j: quantile q[j % m] of
    target column j // m). A gradient that jumps at d = 0 is 0 there."""
    cdef Py_ssize_t i, j, m = loss.n_q, kt = target_width(loss, K)
    cdef double total = 0, row, wi = 1.0, scale
    cdef floating z, t, d, ad, e, g, q
    cdef floating c = <floating>loss.delta, zero = 0, one = 1
    cdef const floating* o
    cdef const floating* tr
    cdef floating* dr
    for i in range(rows):
        o = out + i * K
        tr = T + i * kt
        dr = delta + i * K
        if w != NULL:
            wi = w[i]
        scale = wi / (K * norm)
        row = 0
        for j in range(K):
            z = o[j]
            if loss.kind == QUANTILE:
                t = tr[j // m]
                q = <floating>loss.q[j % m]
                d = t - z
                row += q * d if d >= 0 else (q - one) * d
                g = -q if d > 0 else (one - q if d < 0 else zero)
            elif loss.kind == POISSON:
                t = tr[j]
                e = exp(z)
                row += e - t * z
                g = e - t
            else:
                t = tr[j]
                d = z - t
                ad = fabs(d)
                if loss.kind == MAE:
                    row += ad
                    g = one if d > 0 else (-one if d < 0 else zero)
                elif ad <= c:
                    row += <floating>0.5 * d * d
                    g = d
                else:
                    row += c * (ad - <floating>0.5 * c)
                    g = c if d > 0 else -c
            dr[j] = <floating>(scale * g)
        total += wi * (row / K)
    return total / norm


cdef double loss_and_delta(const LossConfig* loss, Py_ssize_t rows, Py_ssize_t K,
                           const floating* out, const floating* T,
                           const Py_ssize_t* labels, const floating* w, double norm,
                           floating* delta) noexcept nogil:
    """Return sum_i w_i l_i / norm and write delta = d(that)/d(out).

    out is rows x K (the last layer's output; for gaussian_nll K = 2k: means, then log
    variances). T is rows x target_width float targets (probability rows for
    cross_entropy) or NULL when ``labels`` (rows integer classes) is given. w is NULL
    for unit weights. ``norm`` is the sum of the weights of the whole batch, so that
    chunks add up.
    """
    cdef Py_ssize_t i, j, k
    cdef double total = 0, row, wi, scale, m, s, lse, tsum
    cdef floating z, t, d, e, p, inv, sf, mf
    cdef const floating* o
    cdef const floating* tr
    cdef floating* dr
    if loss.kind == MSE:
        return mse_and_delta(rows, K, out, T, w, norm, delta)
    if loss.kind == MAE or loss.kind == HUBER or loss.kind == POISSON or \
            loss.kind == QUANTILE:
        return elementwise_and_delta(loss, rows, K, out, T, w, norm, delta)
    for i in range(rows):
        o = out + i * K
        dr = delta + i * K
        wi = w[i] if w != NULL else 1.0
        row = 0
        if loss.kind == BINARY_CROSS_ENTROPY:
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
        elif loss.kind == CROSS_ENTROPY:
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
        elif loss.kind == GAUSSIAN_NLL:
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


cdef double batch_hits(Py_ssize_t loss, Py_ssize_t rows, Py_ssize_t K,
                       const floating* out, Py_ssize_t rs, Py_ssize_t cs,
                       const floating* T, Py_ssize_t kt, const Py_ssize_t* labels,
                       const floating* w) noexcept nogil:
    """Sum of w_i (1 without weights) over the rows classified right, as
    ``losses.accuracy`` counts them: cross_entropy, the first largest output against
    the label (or against the first largest value of the probability row T_i);
    binary_cross_entropy, every output > 0 against T > 0.5. Output (i, j) is
    out[i * rs + j * cs]: rs = K, cs = 1 row-major, rs = 1, cs = the row length
    feature-major. 0 for the other losses."""
    cdef Py_ssize_t i, j, arg, truth
    cdef floating best
    cdef double total = 0
    cdef bint hit
    if loss != CROSS_ENTROPY and loss != BINARY_CROSS_ENTROPY:
        return 0
    for i in range(rows):
        if loss == CROSS_ENTROPY:
            arg = 0
            best = out[i * rs]
            for j in range(1, K):
                if out[i * rs + j * cs] > best:
                    best = out[i * rs + j * cs]
                    arg = j
            if labels != NULL:
                truth = labels[i]
            else:
                truth = 0
                for j in range(1, kt):
                    if T[i * kt + j] > T[i * kt + truth]:
                        truth = j
            hit = arg == truth
        else:
            hit = True
            for j in range(K):
                if (out[i * rs + j * cs] > 0) != (T[i * kt + j] > 0.5):
                    hit = False
                    break
        if hit:
            total += w[i] if w != NULL else 1.0
    return total
