# --------------------------------------------------------------------------------
# Prediction on a few rows in one call
# --------------------------------------------------------------------------------
# (Included at the end of nncore/_kernels.pyx: the kernels are one compiled module.)
#
# Network.forward and Network.predict on one row (a server answering one request, a
# loop over rows) spend almost all their time in per-call overhead: the general path
# converts and checks X with NumPy calls, takes six buffers and allocates. A
# Predictor, made once per network and build, holds what the forward pass needs and
# takes an X that is already valid (an ndarray of the network's dtype, C-contiguous,
# aligned, native byte order, of the right width, finite, at most PREDICT_MAX_ROWS
# rows) straight to the arithmetic: the checks are a few comparisons on the array
# header and a loop over its values. Anything else it declines, and the caller
# takes the general path, whose conversions and messages stay the only ones.

cimport numpy as cnp

cnp.import_array()

cdef enum:
    # Rows up to which a Predictor takes a call. Above, the general path's checks
    # cost little beside the arithmetic, and its workspace serves.
    _PREDICT_MAX_ROWS = 64
    # Multiply-adds of a call above which the Predictor releases the GIL; below,
    # releasing and taking it back would cost more than the pass itself.
    _PREDICT_NOGIL_ABOVE = 65536

PREDICT_MAX_ROWS = _PREDICT_MAX_ROWS


cdef void transform_rows(Py_ssize_t loss, Py_ssize_t n, Py_ssize_t K,
                         floating* out) noexcept nogil:
    """Raw outputs (n x K, contiguous) to the loss's own space, in place: softmax rows
    (cross_entropy), sigmoid (binary_cross_entropy), exp of the second half of each
    row (gaussian_nll's log variances), exp (poisson's log rates); the other losses'
    are left as they are."""
    cdef Py_ssize_t i, j
    cdef floating m
    cdef double s
    cdef floating* row
    for i in range(n):
        row = out + i * K
        if loss == CROSS_ENTROPY:
            m = row[0]
            for j in range(1, K):
                if row[j] > m:
                    m = row[j]
            s = 0
            for j in range(K):
                row[j] = exp(row[j] - m)
                s += row[j]
            for j in range(K):
                row[j] = <floating>(row[j] / s)
        elif loss == BINARY_CROSS_ENTROPY:
            for j in range(K):
                row[j] = sigmoid(row[j])
        elif loss == GAUSSIAN_NLL:
            for j in range(K // 2, K):
                row[j] = exp(row[j])
        elif loss == POISSON:
            for j in range(K):
                row[j] = exp(row[j])


cdef inline bint all_finite(const floating* x, Py_ssize_t n) noexcept nogil:
    """Whether none of x[0 .. n-1] is NaN or infinite."""
    cdef Py_ssize_t i
    for i in range(n):
        if not isfinite(x[i]):
            return False
    return True


cdef bint predict_rows(const floating* params, const Py_ssize_t* sizes,
                       const Py_ssize_t* acts, Py_ssize_t L, Py_ssize_t loss,
                       bint transform, const floating* X, Py_ssize_t rows,
                       floating* work, Py_ssize_t cap, floating* out) noexcept nogil:
    """out = the network's output for X (rows x sizes[0]), transformed to the loss's
    space when ``transform``; as ``forward`` and ``output_transform`` compute it.
    Returns False, with out untouched, when X holds a NaN or an infinity."""
    if not all_finite(X, rows * sizes[0]):
        return False
    forward_pass(params, sizes, acts, L, X, rows, work, cap, NULL, 0)
    copy_row(out, layer_A(work, sizes, L, cap, acts, L), rows * sizes[L])
    if transform:
        transform_rows(loss, rows, sizes[L], out)
    return True


cdef class Predictor:
    """``forward`` and ``predict`` of one network for an X that needs no conversion.

    Parameters
    ----------
    params : ndarray of shape (n_params,), float32 or float64
        The network's flat parameters, read at every call (never copied).
    sizes : ndarray of shape (L + 1,), intp
        Layer widths, inputs first.
    acts : ndarray of shape (L,), intp
        Activation codes.
    loss : int
        Loss code, for the output transform.
    lock : threading.Lock
        The network's lock: held for the pass, never waited for.

    Notes
    -----
    The workspace grows with the largest call, up to ``PREDICT_MAX_ROWS`` rows, and
    is only touched with the lock held.
    """
    cdef readonly object params
    cdef const Py_ssize_t[::1] sizes
    cdef const Py_ssize_t[::1] acts
    cdef object acquire, release, work, dtype
    cdef const void* p
    cdef void* w
    cdef int typenum
    cdef bint double_precision
    cdef Py_ssize_t L, loss, n_in, n_out, cap, macs_per_row

    def __init__(self, params not None, sizes not None, acts not None, Py_ssize_t loss,
                 lock not None):
        import numpy
        cdef const float[::1] p32
        cdef const double[::1] p64
        self.sizes = sizes
        self.acts = acts
        if numpy.dtype(params.dtype) not in (numpy.float32, numpy.float64):
            raise ValueError(f"Predictor: params must be float32 or float64, "
                             f"not {params.dtype}")
        _check_net(self.sizes, self.acts, params.shape[0])
        if numpy.dtype(params.dtype) == numpy.float32:
            p32 = params
            self.p = &p32[0]
        else:
            p64 = params
            self.p = &p64[0]
        self.L = self.sizes.shape[0] - 1
        self.n_in = self.sizes[0]
        self.n_out = self.sizes[self.L]
        if loss < 0 or loss >= N_LOSSES or (loss == GAUSSIAN_NLL and self.n_out % 2):
            raise ValueError(f"Predictor: bad loss code {loss} for this output")
        # The array itself is kept, so the pointer stays valid: NumPy does not resize
        # an array that others refer to.
        self.params = params
        self.dtype = params.dtype
        self.double_precision = self.dtype == numpy.float64
        self.typenum = cnp.NPY_DOUBLE if self.double_precision else cnp.NPY_FLOAT
        self.loss = loss
        self.macs_per_row = params.shape[0]    # weights and biases: about the work
        self.acquire = lock.acquire
        self.release = lock.release
        self.cap = 0

    cdef int _grow(self, Py_ssize_t rows) except -1:
        """A workspace for at least ``rows`` rows (the lock held)."""
        import numpy
        cdef Py_ssize_t cap = max(1, self.cap)
        cdef float[::1] w32
        cdef double[::1] w64
        while cap < rows:
            cap *= 2
        cap = min(cap, _PREDICT_MAX_ROWS)
        _ensure_blas(_may_use_blas(self.sizes, cap))
        work = numpy.zeros(workspace_size(self.sizes, cap), dtype=self.dtype)
        if self.double_precision:
            w64 = work
            self.w = &w64[0]
        else:
            w32 = work
            self.w = &w32[0]
        self.work = work
        self.cap = cap
        return 0

    cdef bint _pass(self, const void* X, Py_ssize_t rows, void* out,
                    bint transform) noexcept nogil:
        """predict_rows in the network's dtype (the lock held, the workspace big
        enough)."""
        if self.double_precision:
            return predict_rows(<const double*>self.p, &self.sizes[0], &self.acts[0],
                                self.L, self.loss, transform, <const double*>X, rows,
                                <double*>self.w, self.cap, <double*>out)
        return predict_rows(<const float*>self.p, &self.sizes[0], &self.acts[0], self.L,
                            self.loss, transform, <const float*>X, rows, <float*>self.w,
                            self.cap, <float*>out)

    def run(self, X, bint transform):
        """The output for ``X`` as a new (n_samples, n_outputs) array, transformed to
        the loss's space when ``transform``; or None, having done nothing, when X is
        not an ndarray ready for the kernels (see above), holds a NaN or an infinity,
        or the network is busy: the caller's general path then converts X, or
        raises."""
        cdef cnp.ndarray arr
        cdef Py_ssize_t rows
        cdef cnp.npy_intp dims[2]
        cdef bint done
        cdef const void* x
        cdef void* o
        if not cnp.PyArray_CheckExact(X):
            return None
        arr = <cnp.ndarray>X
        rows = cnp.PyArray_DIM(arr, 0) if cnp.PyArray_NDIM(arr) == 2 else 0
        if (rows < 1 or rows > _PREDICT_MAX_ROWS or cnp.PyArray_TYPE(arr) != self.typenum
                or cnp.PyArray_DIM(arr, 1) != self.n_in
                or not cnp.PyArray_ISCARRAY_RO(arr) or not cnp.PyArray_ISNOTSWAPPED(arr)):
            return None
        dims[0] = rows
        dims[1] = self.n_out
        out = cnp.PyArray_EMPTY(2, dims, self.typenum, 0)
        if self.acquire(False) is not True:
            return None
        try:
            if rows > self.cap:
                self._grow(rows)
            x = cnp.PyArray_DATA(arr)
            o = cnp.PyArray_DATA(<cnp.ndarray>out)
            if rows * self.macs_per_row > _PREDICT_NOGIL_ABOVE:
                with nogil:
                    done = self._pass(x, rows, o, transform)
            else:
                done = self._pass(x, rows, o, transform)
        finally:
            self.release()
        return out if done else None
