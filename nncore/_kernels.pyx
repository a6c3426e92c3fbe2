# cython: language_level=3
"""Compiled core of nncore: forward, loss, backward and optimizer loops.

Design note
-----------
Three tiers, one direction:

1. ``cdef ... noexcept nogil`` functions on raw pointers (``floating`` is fused over
   float and double, so one source serves both dtypes). They know nothing of Python
   objects, never allocate and never raise: a problem (a non-finite loss) becomes a
   status code that the caller turns into an exception after the nogil block.
2. ``def`` entry points (``forward``, ``loss_and_grads``, ``train_batches``,
   ``output_transform``) that take typed memoryviews, check that every length the
   nogil code will trust agrees with the layer sizes (a cheap, last line of defence:
   the real validation, with user-facing messages, is in ``nncore/_validation.py``),
   take pointers and release the GIL for all of the arithmetic.
3. The Python ``Network`` (``network.py``) above them, which converts and checks the
   inputs once, owns the buffers and calls an entry point once per chunk of batches.

Memory layout
-------------
All parameters live in one flat array: layer ``l`` holds ``W_l`` (fan_in x fan_out,
row-major) followed by ``b_l`` (fan_out); gradients and optimizer state use the same
layout, so the optimizer is one fused pass over each layer's contiguous part (made
as soon as the backward pass is done with that layer). The workspace for a batch
of ``B`` rows is carved from one flat array (see ``workspace_size``): the gathered
batch, then for each layer its pre-activation ``Z`` and activation ``A`` (B x fan_out),
then two delta buffers of B x max(fan_out) used in turn by the backward pass. Where an
activation's derivative can be computed from its output (all but gelu), ``A`` is
computed in place over ``Z``.

Networks with no layer wider than ``LANES_MAX_WIDTH`` (and at most
``LANES_MAX_INPUT`` inputs) train feature-major instead (``lanes_step``): the same
buffers hold one row per unit, with the batch's samples (padded to whole vectors)
along the row, so that every product and elementwise pass runs along the batch
rather than along a few units.

Source layout: this file holds the declarations, constants and the ``def`` entry
points; it includes its sections, in order, from ``_products.pxi`` (matrix products),
``_activations.pxi``, ``_losses.pxi``, ``_passes.pxi`` (forward and backward passes),
``_feature_major.pxi``, ``_optimizers.pxi`` and ``_gather.pxi``; the C helpers are in
``nncore/csrc/`` (one concern per header; see the summary at the top of each).

Row-major products go to BLAS as column-major ones on the transposed problem
(``C^T = op(B)^T op(A)^T``); products too small for BLAS to pay off run in the
kernels' own register-tiled loop (``nncore/csrc/gemm.h``, see ``BLAS_ABOVE``).
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport exp, log, logf, log1p, sqrt, sqrtf, fabs, pow, isfinite
from libc.stdint cimport uint32_t, uint64_t
from libc.string cimport memcpy, memset
include "_blas_int.pxi"

# SciPy's BLAS products, loaded on first need by _ensure_blas (see nncore/_blas.pyx).
ctypedef void (*sgemm_t)(char *transa, char *transb, blas_int *m, blas_int *n,
                         blas_int *k, float *alpha, float *a, blas_int *lda, float *b,
                         blas_int *ldb, float *beta, float *c,
                         blas_int *ldc) noexcept nogil
ctypedef void (*dgemm_t)(char *transa, char *transb, blas_int *m, blas_int *n,
                         blas_int *k, double *alpha, double *a, blas_int *lda,
                         double *b, blas_int *ldb, double *beta, double *c,
                         blas_int *ldc) noexcept nogil
cdef sgemm_t _sgemm = NULL
cdef dgemm_t _dgemm = NULL

# The C helpers (nncore/csrc/, one concern per header): fast float32 exp/tanh/sigmoid,
# which libm's scalar calls cannot match in loops over small layers (a few ulp);
# float64 tanh, sigmoid, expm1 and softplus (elu's and softplus's in float32 too) at
# libm's accuracy (gaussian_nll's exp, cross_entropy's log and float32
# binary_cross_entropy's exp and log1p, and float64 cross_entropy's exp, still call
# libm); the register-tiled matrix product; the bias gradients' sums; the
# feature-major product.
cdef extern from "csrc/config.h" nogil:
    const int NN_VBYTES
    const Py_ssize_t NN_MAX_LANES
    const Py_ssize_t NN_BLAS_ABOVE

cdef extern from "csrc/math_f32.h" nogil:
    float nn_exp_f32(float x) noexcept
    float nn_tanh_f32(float x) noexcept
    float nn_sigmoid_f32(float x) noexcept
    void nn_tanh_array_f32(Py_ssize_t n, const float* z, float* a) noexcept

cdef extern from "csrc/math_f64.h" nogil:
    double nn_tanh_f64(double x) noexcept
    double nn_expm1_neg_f64(double y) noexcept
    double nn_softplus_f64(double z) noexcept
    double nn_sigmoid_f64(double z) noexcept
    double nn_exp_neg_f64(double y) noexcept
    double nn_log1p_unit_f64(double u) noexcept
    void nn_tanh_array_f64(Py_ssize_t n, const double* z, double* a) noexcept
    void nn_sigmoid_array_f64(Py_ssize_t n, const double* z, double* a) noexcept

cdef extern from "csrc/gemm.h" nogil:
    void nn_gemm_f32(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const float* A,
                     Py_ssize_t rsa, Py_ssize_t csa, const float* B, Py_ssize_t rsb,
                     Py_ssize_t csb, float* C, int accumulate, float* pack) noexcept
    void nn_gemm_f64(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const double* A,
                     Py_ssize_t rsa, Py_ssize_t csa, const double* B, Py_ssize_t rsb,
                     Py_ssize_t csb, double* C, int accumulate, double* pack) noexcept
    void nn_dots_f32(Py_ssize_t M, Py_ssize_t K, const float* A, Py_ssize_t rsa,
                     const float* b, float* C, int accumulate) noexcept
    void nn_dots_f64(Py_ssize_t M, Py_ssize_t K, const double* A, Py_ssize_t rsa,
                     const double* b, double* C, int accumulate) noexcept
    Py_ssize_t NN_GEMM_PACK_SIZE(Py_ssize_t N) noexcept

cdef extern from "csrc/sums.h" nogil:
    void nn_colsums_f32(Py_ssize_t M, Py_ssize_t N, const float* D, float* out,
                        int accumulate) noexcept
    void nn_colsums_f64(Py_ssize_t M, Py_ssize_t N, const double* D, double* out,
                        int accumulate) noexcept
    void nn_rowsums_f32(Py_ssize_t M, Py_ssize_t N, const float* D, Py_ssize_t ldd,
                        float* out) noexcept
    void nn_rowsums_f64(Py_ssize_t M, Py_ssize_t N, const double* D, Py_ssize_t ldd,
                        double* out) noexcept

cdef extern from "csrc/fm.h" nogil:
    void nn_fm_product_f32(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const float* A,
                           Py_ssize_t rsa, Py_ssize_t csa, const float* bias,
                           const float* B, float* C) noexcept
    void nn_fm_product_f64(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const double* A,
                           Py_ssize_t rsa, Py_ssize_t csa, const double* bias,
                           const double* B, double* C) noexcept

cdef extern from "csrc/blocking.h" nogil:
    ctypedef struct nn_blocking_t:
        Py_ssize_t l2
        Py_ssize_t l3
    nn_blocking_t nn_blocking
    const Py_ssize_t NN_KC
    const int NN_MR
    void nn_set_blocking(Py_ssize_t l2, Py_ssize_t l3) noexcept
    Py_ssize_t nn_block_rows(Py_ssize_t kc, Py_ssize_t size) noexcept
    Py_ssize_t nn_block_cols(Py_ssize_t kc, Py_ssize_t size, Py_ssize_t panel) noexcept

cdef extern from "csrc/threads.h" nogil:
    void nn_set_thread_limit(int n) noexcept
    int nn_get_thread_limit() noexcept
    int nn_team_size() noexcept
    int nn_team_size_used() noexcept

cdef extern from "csrc/prefetch.h" nogil:
    void prefetch_bytes "nn_prefetch_bytes"(const void* p, Py_ssize_t nbytes) noexcept


cdef inline floating fast_exp(floating x) noexcept nogil:
    if floating is float:
        return nn_exp_f32(x)
    else:
        return exp(x)


cdef inline floating fsqrt(floating x) noexcept nogil:
    """Square root in the argument's own precision (libm's sqrt would widen float)."""
    if floating is float:
        return sqrtf(x)
    else:
        return sqrt(x)


cdef inline floating fast_tanh(floating x) noexcept nogil:
    if floating is float:
        return nn_tanh_f32(x)
    else:
        return nn_tanh_f64(x)

# Codes shared with the Python layer (nncore/layers.py, losses.py, optimizers.py
# map names to these numbers; keep them in step).
cpdef enum Activation:
    IDENTITY = 0
    SIGMOID = 1
    TANH = 2
    RELU = 3
    LEAKY_RELU = 4
    ELU = 5
    GELU = 6
    SOFTPLUS = 7

cpdef enum Loss:
    MSE = 0
    BINARY_CROSS_ENTROPY = 1
    CROSS_ENTROPY = 2
    GAUSSIAN_NLL = 3

cpdef enum Optimizer:
    SGD = 0
    ADAM = 1
    ADAMW = 2
    RMSPROP = 3

cpdef enum Status:
    OK = 0
    NONFINITE_LOSS = 1

# A product C(M x N) = A(M x K) B(K x N) with more multiply-adds than this goes to
# BLAS; smaller ones run in the kernels' own tiled loop (nncore/csrc/gemm.h). The
# cut-over depends on the instruction set this module was compiled for; it was measured.
BLAS_ABOVE = NN_BLAS_ABOVE

cdef enum:
    # An optimizer pass over more parameters than this is split across threads.
    _OPTIMIZER_PARALLEL_ABOVE = 65536
    # So is the gathering of a shuffled batch of more values than this.
    _GATHER_PARALLEL_ABOVE = 65536
    # Networks with no layer wider than _LANES_MAX_WIDTH and no more than
    # _LANES_MAX_INPUT inputs train in the feature-major layout (see lanes_step).
    # Measured against the row-major one (benches of 15 networks, 1 thread): it
    # wins 1.03-1.9x on such networks in float32, 1.0-1.35x in float64 (where
    # only batches of 8 lost, 0.94x); a 32-wide input, whose every row the gather
    # scatters over 32 rows, lost 0.84-0.99x.
    _LANES_MAX_WIDTH = 32
    _LANES_MAX_INPUT = 16
    # Rows ahead of the one being gathered whose prefetch is asked for.
    _GATHER_AHEAD = 8
    # A feature-major layer with at most this many units on one side takes its
    # weight gradient as dot products (lanes_step).
    _LANES_DOTS_MAX = 4
    # Samples per chunk when a feature-major output is turned to rows for its loss.
    _LOSS_CHUNK = 64
VECTOR_BYTES = NN_VBYTES

# Compile-time constants (C macros, so loops that use them still vectorize).
cdef extern from *:
    """
    #define NN_LEAKY_SLOPE 0.01     /* leaky_relu slope for z < 0 */
    #define NN_GELU_C 0.7978845608028654    /* sqrt(2 / pi) */
    #define NN_GELU_A 0.044715
    """
    const double LEAKY_SLOPE "NN_LEAKY_SLOPE"
    const double GELU_C "NN_GELU_C"
    const double GELU_A "NN_GELU_A"


include "_products.pxi"
include "_activations.pxi"
include "_losses.pxi"
include "_passes.pxi"
include "_feature_major.pxi"
include "_optimizers.pxi"
include "_gather.pxi"
include "_settings.pxi"


# --------------------------------------------------------------------------------
# Python entry points: check what the nogil code trusts, then release the GIL
# --------------------------------------------------------------------------------

cdef int _ensure_blas(bint needed) except -1:
    """Load SciPy's sgemm/dgemm before nogil code that may call them. ``needed``:
    whether this call may reach BLAS at all (builds whose own loop takes every
    product never need it, and so never import SciPy's linear algebra)."""
    global _sgemm, _dgemm
    if not needed or _sgemm != NULL:
        return 0
    import importlib
    s, d = importlib.import_module("nncore._blas").gemm_addresses()
    _dgemm = <dgemm_t><size_t>d
    _sgemm = <sgemm_t><size_t>s
    return 0


cdef inline bint _may_use_blas(const Py_ssize_t[::1] sizes, Py_ssize_t rows):
    """Whether a pass over ``rows`` rows has a product above NN_BLAS_ABOVE."""
    cdef Py_ssize_t l, big = 0
    for l in range(sizes.shape[0]):
        if sizes[l] > big:
            big = sizes[l]
    # Every product is rows x fan_in x fan_out or fan_in x fan_out x rows.
    return <double>rows * big * big > <double>NN_BLAS_ABOVE   # (no overflow)


def feature_major(const Py_ssize_t[::1] sizes not None, dtype):
    """Whether ``train_batches`` runs a network of these layer sizes and this dtype
    (float32 or float64) in the feature-major layout: networks with every layer at
    most ``LANES_MAX_WIDTH`` units wide and at most ``LANES_MAX_INPUT`` inputs (see
    lanes_step), in either dtype. (float64 ones stayed row-major while libm's tanh,
    a call per value, dominated their steps: the layout measured 0.73-0.75x on
    2-16-1 then, 1.3x with the vectorized nn_tanh_array_f64.)"""
    import numpy
    if sizes.shape[0] < 2:
        raise ValueError("feature_major: need at least two sizes")
    if numpy.dtype(dtype) not in (numpy.float32, numpy.float64):
        raise ValueError(f"feature_major: dtype must be float32 or float64, not {dtype}")
    return lanes_layout(&sizes[0], sizes.shape[0] - 1)


LANES_MAX_WIDTH = _LANES_MAX_WIDTH
LANES_MAX_INPUT = _LANES_MAX_INPUT


def workspace_size(const Py_ssize_t[::1] sizes not None, Py_ssize_t rows):
    """Length of the flat workspace for batches of up to ``rows`` rows.

    rows x sizes[0] (gathered input) + for each layer 2 x rows x fan_out (Z and A) +
    2 x rows x max fan_out (deltas) + the matrix products' packing buffer; for a
    network that trains feature-major (lanes_step), rows rounded up to whole vectors.
    """
    cdef Py_ssize_t L = sizes.shape[0] - 1, l, n
    if rows < 1 or L < 1:
        raise ValueError(f"workspace_size: need rows >= 1 and at least two sizes; got "
                         f"rows={rows}, {sizes.shape[0]} sizes")
    if lanes_layout(&sizes[0], L):
        rows = lanes_padded(rows)
    n = rows * sizes[0]
    for l in range(L):
        n += 2 * rows * sizes[l + 1]
    n += 2 * rows * max_width(&sizes[0], L)
    # Packing buffer of the matrix products, whose N is a fan_in or a fan_out.
    n += NN_GEMM_PACK_SIZE(max(max_width(&sizes[0], L), sizes[0]))
    return n


cdef void _check_net(const Py_ssize_t[::1] sizes, const Py_ssize_t[::1] acts,
                     Py_ssize_t n_params) except *:
    cdef Py_ssize_t l, L = sizes.shape[0] - 1
    if L < 1 or acts.shape[0] != L:
        raise ValueError("kernel: sizes must have one entry more than acts")
    for l in range(L + 1):
        if sizes[l] < 1 or sizes[l] > 2147483647:
            raise ValueError("kernel: layer sizes must be in [1, 2**31 - 1] (BLAS sizes)")
    for l in range(L):
        if acts[l] < IDENTITY or acts[l] > SOFTPLUS:
            raise ValueError(f"kernel: unknown activation code {acts[l]}")
    if n_params != param_count(&sizes[0], L):
        raise ValueError("kernel: parameter array length does not match the layer sizes")


cdef void _check_targets(Py_ssize_t loss, Py_ssize_t n, Py_ssize_t K, Py_ssize_t t_rows,
                         Py_ssize_t t_cols, Py_ssize_t n_labels, Py_ssize_t n_weights,
                         Py_ssize_t n_classes_ok) except *:
    if loss < MSE or loss > GAUSSIAN_NLL:
        raise ValueError(f"kernel: unknown loss code {loss}")
    if n_labels:
        if loss != CROSS_ENTROPY or n_labels != n or not n_classes_ok:
            raise ValueError("kernel: integer labels do not match the batch")
        if t_rows:
            raise ValueError("kernel: give integer labels or float targets, not both")
    else:
        if t_rows != n:
            raise ValueError("kernel: targets do not match the batch")
        if t_cols != (K // 2 if loss == GAUSSIAN_NLL else K) or (loss == GAUSSIAN_NLL and K % 2):
            raise ValueError("kernel: target width does not match the output")
    if n_weights and n_weights != n:
        raise ValueError("kernel: sample_weight does not match the batch")


cdef bint _labels_in_range(const Py_ssize_t[::1] labels, Py_ssize_t K) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(labels.shape[0]):
        if labels[i] < 0 or labels[i] >= K:
            return False
    return True


def forward(const floating[::1] params not None, const Py_ssize_t[::1] sizes not None,
            const Py_ssize_t[::1] acts not None, const floating[:, ::1] X not None,
            floating[:, ::1] out not None, floating[::1] work not None, Py_ssize_t cap):
    """out = network(X): the last layer's activation, for X (n, sizes[0]).

    Runs in chunks of ``cap`` rows through ``work`` (length ``workspace_size(sizes,
    cap)``), so memory does not grow with n.
    """
    cdef Py_ssize_t L = sizes.shape[0] - 1, n = X.shape[0], start, rows, K
    _check_net(sizes, acts, params.shape[0])
    K = sizes[L]
    if X.shape[1] != sizes[0] or out.shape[0] != n or out.shape[1] != K:
        raise ValueError("kernel: X or out does not match the layer sizes")
    if cap < 1 or work.shape[0] < workspace_size(sizes, cap):
        raise ValueError("kernel: workspace too small")
    _ensure_blas(_may_use_blas(sizes, cap))
    with nogil:
        start = 0
        while start < n:
            rows = min(cap, n - start)
            forward_pass(&params[0], &sizes[0], &acts[0], L, &X[start, 0], rows,
                         &work[0], cap)
            memcpy(&out[start, 0], layer_A(&work[0], &sizes[0], L, cap, &acts[0], L - 1),
                   rows * K * sizeof(floating))
            start += rows


def output_transform(Py_ssize_t loss, floating[:, ::1] out not None):
    """Map raw outputs to the loss's own space, in place.

    cross_entropy: softmax rows; binary_cross_entropy: sigmoid; mse: unchanged;
    gaussian_nll: the second half of each row (log variances s) becomes exp(s).
    """
    cdef Py_ssize_t i, j, n = out.shape[0], K = out.shape[1]
    cdef floating m
    cdef double s
    if loss == GAUSSIAN_NLL and K % 2:
        raise ValueError("kernel: gaussian_nll needs an even output width")
    with nogil:
        for i in range(n):
            if loss == CROSS_ENTROPY:
                m = out[i, 0]
                for j in range(1, K):
                    if out[i, j] > m:
                        m = out[i, j]
                s = 0
                for j in range(K):
                    out[i, j] = exp(out[i, j] - m)
                    s += out[i, j]
                for j in range(K):
                    out[i, j] = <floating>(out[i, j] / s)
            elif loss == BINARY_CROSS_ENTROPY:
                for j in range(K):
                    out[i, j] = sigmoid(out[i, j])
            elif loss == GAUSSIAN_NLL:
                for j in range(K // 2, K):
                    out[i, j] = exp(out[i, j])


def loss_and_grads(const floating[::1] params not None, floating[::1] grads not None,
                   const Py_ssize_t[::1] sizes not None, const Py_ssize_t[::1] acts not None,
                   Py_ssize_t loss, const floating[:, ::1] X not None,
                   const floating[:, ::1] T not None, const Py_ssize_t[::1] labels not None,
                   const floating[::1] sample_weight not None, floating[::1] work not None,
                   Py_ssize_t cap, bint want_grads):
    """Loss of the whole of X (weighted mean over rows) and, if ``want_grads``, its
    gradient with respect to ``params`` written to ``grads`` (same layout).

    Targets: ``T`` (n, k) floats, or ``labels`` (n,) class indices with T empty. An
    empty ``sample_weight`` means unit weights. Processed in chunks of ``cap`` rows;
    chunk gradients are normalised by the total weight so that they add up.
    """
    cdef Py_ssize_t L = sizes.shape[0] - 1, n = X.shape[0], K, start, rows
    cdef double norm = 0, total = 0
    cdef const floating* Tp
    cdef const Py_ssize_t* lp
    cdef const floating* wp
    cdef floating* out
    cdef Py_ssize_t i
    _check_net(sizes, acts, params.shape[0])
    K = sizes[L]
    if X.shape[1] != sizes[0] or n < 1:
        raise ValueError("kernel: X does not match the first layer")
    _check_targets(loss, n, K, T.shape[0], T.shape[1], labels.shape[0],
                   sample_weight.shape[0], _labels_in_range(labels, K))
    if want_grads and grads.shape[0] != params.shape[0]:
        raise ValueError("kernel: grads does not match params")
    if cap < 1 or work.shape[0] < workspace_size(sizes, cap):
        raise ValueError("kernel: workspace too small")
    _ensure_blas(_may_use_blas(sizes, cap))
    with nogil:
        if sample_weight.shape[0]:
            for i in range(n):
                norm += sample_weight[i]
        else:
            norm = n
        if want_grads:
            memset(&grads[0], 0, grads.shape[0] * sizeof(floating))
        start = 0
        while start < n:
            rows = min(cap, n - start)
            Tp = &T[start, 0] if T.shape[0] else NULL
            lp = &labels[start] if labels.shape[0] else NULL
            wp = &sample_weight[start] if sample_weight.shape[0] else NULL
            forward_pass(&params[0], &sizes[0], &acts[0], L, &X[start, 0], rows,
                         &work[0], cap)
            out = layer_A(&work[0], &sizes[0], L, cap, &acts[0], L - 1)
            total += loss_and_delta(loss, rows, K, out, Tp, lp, wp, norm,
                                    delta_buffer(&work[0], &sizes[0], L, cap, 0))
            if want_grads:
                backward_pass(<floating*>&params[0], &grads[0], &sizes[0], &acts[0], L,
                              &X[start, 0], rows, &work[0], cap, 1, NULL, 0, NULL, NULL)
            start += rows
    return total


def train_batches(floating[::1] params not None, floating[::1] grads not None,
                  floating[::1] state1 not None, floating[::1] state2 not None,
                  const Py_ssize_t[::1] sizes not None, const Py_ssize_t[::1] acts not None,
                  Py_ssize_t loss, const floating[:, ::1] X not None,
                  const floating[:, ::1] T not None, const Py_ssize_t[::1] labels not None,
                  const floating[::1] sample_weight not None,
                  const Py_ssize_t[::1] order not None,
                  floating[::1] work not None, floating[:, ::1] T_batch not None,
                  Py_ssize_t[::1] labels_batch not None, floating[::1] w_batch not None,
                  Py_ssize_t batch_size, Py_ssize_t first_batch, Py_ssize_t n_batches,
                  Py_ssize_t kind, double lr, double momentum, bint nesterov,
                  double weight_decay, double beta1, double beta2, double eps,
                  double alpha, Py_ssize_t step, double loss_sum=0,
                  double weight_sum=0):
    """Train on batches ``first_batch`` .. ``first_batch + n_batches - 1`` of an epoch.

    Batch b holds rows ``order[b*B : (b+1)*B]`` of X (the last one may be shorter);
    an empty ``order`` means rows in their stored order, read in place. Per batch:
    gather (and prefetch the next batch) -> forward -> fused loss and output delta ->
    backward, each layer's optimizer update (step number ``step + 1``, ``step + 2``,
    ...) following its backward step. ``T_batch``, ``labels_batch`` and
    ``w_batch`` are gather buffers of ``batch_size`` rows (empty when the matching
    input is empty).

    Returns ``(loss_sum, weight_sum, batches_done, steps_done, status)``: the given
    ``loss_sum`` plus, over finished batches, (batch loss x batch weight), the given
    ``weight_sum`` plus their weights (carrying the sums through the calls of an epoch
    keeps the epoch's loss independent of how it was cut into calls), how many
    batches were finished, how many optimizer steps were applied (a batch whose
    weights are all zero is skipped without a step), and ``Status.OK`` or
    ``Status.NONFINITE_LOSS`` when a batch's loss was NaN or infinite (that batch's
    update is not applied and it is not counted as finished).
    """
    cdef Py_ssize_t L = sizes.shape[0] - 1, n = X.shape[0], K, n0, kt
    cdef Py_ssize_t B = batch_size, b, start, rows, r, src, done = 0, steps = 0, i
    cdef Py_ssize_t n_params = params.shape[0]
    cdef bint gather = order.shape[0] > 0, prefetch, prefetch_next
    cdef bint has_T = T.shape[0] > 0, has_labels = labels.shape[0] > 0
    cdef bint has_w = sample_weight.shape[0] > 0
    cdef double batch_loss, wsum
    cdef int status = OK
    cdef OptimizerConfig cfg
    cdef const floating* Xb
    cdef const floating* Tb
    cdef const Py_ssize_t* lb
    cdef const floating* wb
    cdef floating* Xg
    cdef floating* out
    cdef Py_ssize_t parts = nn_team_size(), c, next_rows, cap, x_stride, ahead
    cdef bint lanes
    cdef const floating* X_p = &X[0, 0]
    cdef const floating* T_p = NULL
    cdef const Py_ssize_t* labels_p = NULL
    cdef const floating* w_p = NULL
    cdef floating* Tb_p = NULL
    cdef Py_ssize_t* lb_p = NULL
    cdef floating* wb_p = NULL

    _check_net(sizes, acts, n_params)
    K = sizes[L]
    n0 = sizes[0]
    if X.shape[1] != n0 or n < 1:
        raise ValueError("kernel: X does not match the first layer")
    _check_targets(loss, n, K, T.shape[0], T.shape[1], labels.shape[0],
                   sample_weight.shape[0], True)
    kt = T.shape[1]
    if grads.shape[0] != n_params:
        raise ValueError("kernel: grads does not match params")
    if kind < SGD or kind > RMSPROP:
        raise ValueError(f"kernel: unknown optimizer code {kind}")
    if (kind != SGD or momentum != 0) and state1.shape[0] != n_params:
        raise ValueError("kernel: optimizer state 1 does not match params")
    if kind != SGD and state2.shape[0] != n_params:
        raise ValueError("kernel: optimizer state 2 does not match params")
    lanes = lanes_layout(&sizes[0], L)   # see feature_major
    # The feature-major layout pads the batch to whole vectors (workspace_size
    # counts the padding).
    cap = lanes_padded(B) if lanes else B
    x_stride = cap if lanes else 0
    if B < 1 or B > 2147483647 or work.shape[0] < workspace_size(sizes, B):
        raise ValueError("kernel: workspace too small for the batch size")
    if first_batch < 0 or n_batches < 0 or (first_batch + n_batches - 1) * B >= n + B:
        raise ValueError("kernel: batch range outside the data")
    # Every row this call reads, and its label, must be in range: checked over this
    # chunk's rows only, so the cost is proportional to the work done.
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

    cfg.kind = kind
    cfg.lr = lr
    cfg.momentum = momentum
    cfg.nesterov = nesterov
    cfg.weight_decay = weight_decay
    cfg.beta1 = beta1
    cfg.beta2 = beta2
    cfg.eps = eps
    cfg.alpha = alpha

    if has_T:
        T_p = &T[0, 0]
        if gather:
            Tb_p = &T_batch[0, 0]
    if has_labels:
        labels_p = &labels[0]
        if gather:
            lb_p = &labels_batch[0]
    if has_w:
        w_p = &sample_weight[0]
        if gather:
            wb_p = &w_batch[0]
    _ensure_blas(_may_use_blas(sizes, B))
    with nogil:
        Xg = &work[0]
        # Prefetching pays when X is beyond the L2 cache (about 1 MiB on the CPUs
        # measured); below that, the hints cost more than the misses they avoid.
        prefetch = gather and <double>n * n0 * sizeof(floating) > 1048576
        ahead = _GATHER_AHEAD if prefetch else 0
        prefetch_next = prefetch and B * n0 * sizeof(floating) <= 65536
        for b in range(first_batch, first_batch + n_batches):
            start = b * B
            rows = min(B, n - start)
            if rows <= 0:
                break
            if gather:
                # Each row of the batch, and a prefetch of the next batch's (see
                # gather_rows); for a large batch, shared among the threads: it is
                # memory-bound work that would otherwise leave the others waiting.
                next_rows = 0
                if prefetch_next and b + 1 < first_batch + n_batches:
                    next_rows = max(0, min(B, n - start - B))
                if parts > 1 and rows * n0 > _GATHER_PARALLEL_ABOVE:
                    for c in prange(parts, schedule="static", chunksize=1,
                                    num_threads=parts):
                        gather_rows(c * rows // parts, (c + 1) * rows // parts,
                                    c * next_rows // parts, (c + 1) * next_rows // parts,
                                    &order[start], X_p, n0, T_p, kt, labels_p, w_p, Xg,
                                    x_stride, Tb_p, lb_p, wb_p, B, ahead)
                else:
                    gather_rows(0, rows, 0, next_rows, &order[start], X_p, n0, T_p, kt,
                                labels_p, w_p, Xg, x_stride, Tb_p, lb_p, wb_p, B, ahead)
                Xb = Xg
                Tb = &T_batch[0, 0] if has_T else NULL
                lb = &labels_batch[0] if has_labels else NULL
                wb = &w_batch[0] if has_w else NULL
            else:
                Xb = &X[start, 0]
                Tb = &T[start, 0] if has_T else NULL
                lb = &labels[start] if has_labels else NULL
                wb = &sample_weight[start] if has_w else NULL
                if lanes:
                    # Rows in their stored order, turned feature-major.
                    for r in range(rows):
                        for i in range(n0):
                            Xg[i * x_stride + r] = Xb[r * n0 + i]
            if lanes:
                # The padding samples: zeros, so that every value computed from them
                # is finite (they never reach a gradient; see lanes_step).
                for i in range(n0):
                    for r in range(rows, cap):
                        Xg[i * x_stride + r] = 0
            if has_w:
                wsum = 0
                for r in range(rows):
                    wsum += wb[r]
            else:
                wsum = rows
            if wsum <= 0:
                # Every row of this batch has weight zero: the weighted mean is
                # undefined, and the batch carries no information. Skip it.
                done += 1
                continue
            if lanes:
                batch_loss = lanes_step(&params[0], &grads[0], &sizes[0], &acts[0], L,
                                        loss, rows, &work[0], cap, Tb, kt, lb, wb,
                                        wsum, &cfg, step + steps + 1,
                                        &state1[0] if state1.shape[0] else NULL,
                                        &state2[0] if state2.shape[0] else NULL)
                if not isfinite(batch_loss):
                    status = NONFINITE_LOSS
                    break
            else:
                forward_pass(&params[0], &sizes[0], &acts[0], L, Xb, rows, &work[0], B)
                out = layer_A(&work[0], &sizes[0], L, B, &acts[0], L - 1)
                batch_loss = loss_and_delta(loss, rows, K, out, Tb, lb, wb, wsum,
                                            delta_buffer(&work[0], &sizes[0], L, B, 0))
                if not isfinite(batch_loss):
                    status = NONFINITE_LOSS
                    break
                backward_pass(&params[0], &grads[0], &sizes[0], &acts[0], L, Xb, rows,
                              &work[0], B, 0, &cfg, step + steps + 1,
                              &state1[0] if state1.shape[0] else NULL,
                              &state2[0] if state2.shape[0] else NULL)
            loss_sum += batch_loss * wsum
            weight_sum += wsum
            steps += 1
            done += 1
    return loss_sum, weight_sum, done, steps, status


def matmul_into(const floating[:, ::1] A not None, const floating[:, ::1] B not None,
                floating[:, ::1] C not None, bint trans_a, bint trans_b, bint accumulate,
                Py_ssize_t path=0):
    """C (+)= op(A) op(B) through the kernels' own dispatch; for tests and tuning.

    ``path``: 0 chooses as the training loop does (own loops up to BLAS_ABOVE
    multiply-adds, BLAS above), 1 forces the kernels' own loops, 2 forces BLAS.
    """
    cdef Py_ssize_t M = A.shape[1] if trans_a else A.shape[0]
    cdef Py_ssize_t K = A.shape[0] if trans_a else A.shape[1]
    cdef Py_ssize_t N = B.shape[0] if trans_b else B.shape[1]
    cdef Py_ssize_t KB = B.shape[1] if trans_b else B.shape[0]
    cdef floating[::1] scratch
    if K != KB or C.shape[0] != M or C.shape[1] != N:
        raise ValueError(f"matmul_into: shapes do not agree: op(A) {M}x{K}, "
                         f"op(B) {KB}x{N}, C {C.shape[0]}x{C.shape[1]}")
    if M == 0 or N == 0 or K == 0 or path < 0 or path > 2:
        raise ValueError("matmul_into: empty operand or unknown path")
    dtype = "float32" if floating is float else "float64"
    import numpy
    scratch = numpy.empty(NN_GEMM_PACK_SIZE(N), dtype=dtype)   # (written before read)
    _ensure_blas(path == 2 or (path == 0 and <double>M * N * K > <double>NN_BLAS_ABOVE))
    with nogil:
        gemm_path(path, trans_a, trans_b, M, N, K, &A[0, 0], &B[0, 0],
                  1 if accumulate else 0, &C[0, 0], &scratch[0])


def shuffle_into(Py_ssize_t[::1] order not None, const uint32_t[::1] draws not None):
    """order := a random permutation of range(n), driven by n uniform 32-bit ``draws``.

    Fisher-Yates: start from the identity, then for i = n-1 down to 1 swap order[i]
    with order[j], j = floor(draws[i] * (i + 1) / 2^32), uniform on 0..i up to a bias
    below (i + 1) / 2^32. ``nncore._training.epoch_order`` feeds it from a NumPy
    Generator; this is several times faster than ``Generator.permutation``, whose
    cost was a tenth of a small network's epoch.
    """
    cdef Py_ssize_t n = order.shape[0], i, j, tmp
    if draws.shape[0] != n:
        raise ValueError(f"shuffle_into: {draws.shape[0]} draws for {n} rows")
    if n > 4294967295:
        raise ValueError("shuffle_into: at most 2**32 - 1 rows")
    with nogil:
        for i in range(n):
            order[i] = i
        for i in range(n - 1, 0, -1):
            j = <Py_ssize_t>((<uint64_t>draws[i] * <uint64_t>(i + 1)) >> 32)
            tmp = order[i]
            order[i] = order[j]
            order[j] = tmp
