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
of ``rows`` rows is carved from one flat array (see ``workspace_size``): the gathered
batch, then for each layer its pre-activation ``Z`` and activation ``A`` (rows x fan_out),
then two delta buffers of rows x max(fan_out) used in turn by the backward pass, the
matrix products' packing buffer, and the gathered batch's targets, weights and labels.
Where an activation's derivative can be computed from its output (all but gelu), ``A``
is computed in place over ``Z``.

Layers are numbered as in ``nncore.reference``: layer l = 1..L maps A_{l-1} to A_l, with
A_0 = X (see ``_passes.pxi``).

The codes that name an activation, a loss and an optimizer's update rule are one
table, ``_codes.pxd``; the Python layer reads them back from ``nncore._codes``.

Networks with no layer wider than ``FM_MAX_WIDTH`` (and at most
``FM_MAX_INPUT`` inputs) train feature-major instead (``fm_step``): the same
buffers hold one row per unit, with the batch's samples (padded to whole vectors)
along the row, so that every product and elementwise pass runs along the batch
rather than along a few units.

Source layout: this file holds the declarations, constants and the ``def`` entry
points; it includes its sections, in order, from ``_products.pxi`` (matrix products),
``_activations.pxi``, ``_dropout.pxi``, ``_losses.pxi``, ``_passes.pxi`` (forward and
backward passes, one training step), ``_feature_major.pxi``, ``_optimizers.pxi``,
``_gather.pxi`` (where each batch comes from) and ``_checks.pxi`` (the entry points'
checks); the C helpers are in ``nncore/csrc/`` (one concern per header; see the
summary at the top of each).

Row-major products go to BLAS as column-major ones on the transposed problem
(``C^T = op(B)^T op(A)^T``); products too small for BLAS to pay off run in the
kernels' own register-tiled loop (``nncore/csrc/gemm.h``, see ``BLAS_ABOVE``).
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport ceil, exp, log, logf, log1p, sqrt, sqrtf, fabs, pow, isfinite
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
    void nn_set_call_cap(int n) noexcept
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

# The activation, loss and optimizer codes and the status codes: one table, in
# nncore/_codes.pxd, which the Python layer reads back from nncore._codes.
from nncore._codes cimport *

# An optimizer's update rule and its hyperparameters, as one value: train_batches
# fills it from the dict that Optimizer._kernel_settings (optimizers.py) gives, and
# optimizer_range (_optimizers.pxi) applies it. A field its rule does not use is 0.
ctypedef struct OptimizerConfig:
    Py_ssize_t kind        # an Optimizer code
    double lr
    double weight_decay
    double momentum        # SGD, RMSprop
    bint nesterov          # SGD
    double beta1           # Adam, AdamW
    double beta2           # Adam, AdamW
    double eps             # Adam, AdamW, RMSprop
    double alpha           # RMSprop
    double eta_minus       # Rprop: step size factors, and the step sizes' range
    double eta_plus
    double step_min
    double step_max
    double clip_norm       # > 0: the gradient's L2 norm is clipped to this first

# A loss and its parameters (loss_and_delta, _losses.pxi).
ctypedef struct LossConfig:
    Py_ssize_t kind        # a Loss code
    double delta           # huber: where the quadratic part ends
    const double* q        # quantile: the n_q quantiles, taken in turn along a row
    Py_ssize_t n_q

# A product C(M x N) = A(M x K) B(K x N) with more multiply-adds than this goes to
# BLAS; smaller ones run in the kernels' own tiled loop (nncore/csrc/gemm.h). The
# cut-over depends on the instruction set this module was compiled for; it was measured.
BLAS_ABOVE = NN_BLAS_ABOVE

cdef enum:
    # An optimizer pass over more parameters than this is split across threads.
    _OPTIMIZER_PARALLEL_ABOVE = 65536
    # So is the gathering of a shuffled batch of more values than this.
    _GATHER_PARALLEL_ABOVE = 65536
    # Networks with no layer wider than _FM_MAX_WIDTH and no more than
    # _FM_MAX_INPUT inputs train in the feature-major layout (see fm_step).
    # Measured against the row-major one (benches of 15 networks, 1 thread): it
    # wins 1.03-1.9x on such networks in float32, 1.0-1.35x in float64 (where
    # only batches of 8 lost, 0.94x); a 32-wide input, whose every row the gather
    # scatters over 32 rows, lost 0.84-0.99x.
    _FM_MAX_WIDTH = 32
    _FM_MAX_INPUT = 16
    # Rows ahead of the one being gathered whose prefetch is asked for.
    _GATHER_AHEAD = 8
    # A feature-major layer with at most this many units on one side takes its
    # weight gradient as dot products (fm_step).
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
include "_dropout.pxi"
include "_losses.pxi"
include "_passes.pxi"
include "_feature_major.pxi"
include "_optimizers.pxi"
include "_gather.pxi"
include "_settings.pxi"
include "_checks.pxi"


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
    most ``FM_MAX_WIDTH`` units wide and at most ``FM_MAX_INPUT`` inputs (see
    fm_step), in either dtype. (float64 ones stayed row-major while libm's tanh,
    a call per value, dominated their steps: the layout measured 0.73-0.75x on
    2-16-1 then, 1.3x with the vectorized nn_tanh_array_f64.)"""
    import numpy
    if sizes.shape[0] < 2:
        raise ValueError("feature_major: need at least two sizes")
    if numpy.dtype(dtype) not in (numpy.float32, numpy.float64):
        raise ValueError(f"feature_major: dtype must be float32 or float64, not {dtype}")
    return fm_layout(&sizes[0], sizes.shape[0] - 1)


FM_MAX_WIDTH = _FM_MAX_WIDTH
FM_MAX_INPUT = _FM_MAX_INPUT


def workspace_size(const Py_ssize_t[::1] sizes not None, Py_ssize_t rows):
    """Length of the flat workspace for batches of up to ``rows`` rows.

    rows x sizes[0] (gathered input) + for each layer 2 x rows x fan_out (Z and A) +
    2 x rows x max fan_out (deltas) + the matrix products' packing buffer + a
    gathered batch's targets, weights and labels (gathered_size); for a network that
    trains feature-major (fm_step), rows rounded up to whole vectors.
    """
    cdef Py_ssize_t L = sizes.shape[0] - 1, l, n
    if rows < 1 or L < 1:
        raise ValueError(f"workspace_size: need rows >= 1 and at least two sizes; got "
                         f"rows={rows}, {sizes.shape[0]} sizes")
    if fm_layout(&sizes[0], L):
        rows = fm_padded(rows)
    n = rows * sizes[0]
    for l in range(1, L + 1):
        n += 2 * rows * sizes[l]
    n += 2 * rows * max_width(&sizes[0], L)
    n += gemm_scratch_size(&sizes[0], L)
    return n + gathered_size(rows, sizes[L])


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
                         &work[0], cap, NULL, 0)
            memcpy(&out[start, 0], layer_A(&work[0], &sizes[0], L, cap, &acts[0], L),
                   rows * K * sizeof(floating))
            start += rows


def output_transform(Py_ssize_t loss, floating[:, ::1] out not None):
    """Map raw outputs to the loss's own space, in place.

    cross_entropy: softmax rows; binary_cross_entropy: sigmoid; gaussian_nll: the
    second half of each row (log variances s) becomes exp(s); poisson: exp (the
    rates); the others unchanged.
    """
    cdef Py_ssize_t n = out.shape[0], K = out.shape[1]
    if loss == GAUSSIAN_NLL and K % 2:
        raise ValueError("kernel: gaussian_nll needs an even output width")
    if n == 0 or K == 0:
        return
    with nogil:
        transform_rows(loss, n, K, &out[0, 0])


def loss_and_grads(const floating[::1] params not None, floating[::1] grads,
                   const Py_ssize_t[::1] sizes not None, const Py_ssize_t[::1] acts not None,
                   Py_ssize_t loss, const double[::1] loss_params,
                   const floating[:, ::1] X not None, const floating[:, ::1] T,
                   const Py_ssize_t[::1] labels, const floating[::1] sample_weight,
                   floating[::1] work not None, Py_ssize_t cap,
                   floating[:, ::1] dX=None, floating[:, ::1] out=None):
    """Loss of the whole of X (weighted mean over rows) and, unless ``grads`` is
    None, its gradient with respect to ``params`` written to ``grads`` (same layout);
    with ``dX`` (X's shape), its gradient with respect to X too.

    ``loss_params``: the loss's parameters (see _loss_config), or None. Targets:
    ``T`` (n, k) floats or ``labels`` (n,) class indices, the other None.
    ``sample_weight`` None means unit weights. Processed in chunks of ``cap`` rows;
    chunk gradients are normalised by the total weight so that they add up. The
    network is taken as a deterministic function: no dropout. ``out`` (n,
    sizes[-1]), unless None, receives the raw output of the same forward pass (as
    ``forward`` writes it): an evaluation's loss and accuracy from one pass.
    """
    cdef Py_ssize_t L = sizes.shape[0] - 1, n = X.shape[0], K, start, rows
    cdef double norm = 0, total = 0
    cdef const floating* Tp
    cdef const Py_ssize_t* lp
    cdef const floating* wp
    cdef floating* A
    cdef bint want_grads = grads is not None, want_out = out is not None
    cdef LossConfig lcfg
    _check_net(sizes, acts, params.shape[0])
    K = sizes[L]
    if X.shape[1] != sizes[0] or n < 1:
        raise ValueError("kernel: X does not match the first layer")
    _loss_config(loss, loss_params, K, &lcfg)
    _check_targets(&lcfg, n, K, T, labels, sample_weight, True)
    if want_grads and grads.shape[0] != params.shape[0]:
        raise ValueError("kernel: grads does not match params")
    if want_out and (out.shape[0] != n or out.shape[1] != K):
        raise ValueError("kernel: out does not match X and the output layer")
    if dX is not None and (dX.shape[0] != n or dX.shape[1] != sizes[0] or not want_grads):
        raise ValueError("kernel: dX does not match X (or no grads to compute it with)")
    if cap < 1 or work.shape[0] < workspace_size(sizes, cap):
        raise ValueError("kernel: workspace too small")
    _ensure_blas(_may_use_blas(sizes, cap))
    with nogil:
        norm = batch_weight(&sample_weight[0] if sample_weight is not None else NULL, n)
        if want_grads:
            memset(&grads[0], 0, grads.shape[0] * sizeof(floating))
        start = 0
        while start < n:
            rows = min(cap, n - start)
            Tp = &T[start, 0] if T is not None else NULL
            lp = &labels[start] if labels is not None else NULL
            wp = &sample_weight[start] if sample_weight is not None else NULL
            forward_pass(&params[0], &sizes[0], &acts[0], L, &X[start, 0], rows,
                         &work[0], cap, NULL, 0)
            A = layer_A(&work[0], &sizes[0], L, cap, &acts[0], L)
            if want_out:
                memcpy(&out[start, 0], A, rows * K * sizeof(floating))
            total += loss_and_delta(&lcfg, rows, K, A, Tp, lp, wp, norm,
                                    delta_buffer(&work[0], &sizes[0], L, cap, 0))
            if want_grads:
                backward_pass(<floating*>&params[0], &grads[0], &sizes[0], &acts[0], L,
                              &X[start, 0], rows, &work[0], cap, 1, NULL, 0, NULL, NULL,
                              NULL, &dX[start, 0] if dX is not None else NULL)
            start += rows
    return total


def train_batches(floating[::1] params not None, floating[::1] grads not None,
                  const Py_ssize_t[::1] sizes not None, const Py_ssize_t[::1] acts not None,
                  Py_ssize_t loss, const double[::1] loss_params,
                  const floating[:, ::1] X not None, const floating[:, ::1] T,
                  const Py_ssize_t[::1] labels, const floating[::1] sample_weight,
                  const Py_ssize_t[::1] order, floating[::1] work not None,
                  Py_ssize_t batch_size, Py_ssize_t first_batch, Py_ssize_t n_batches,
                  dict optimizer not None, floating[::1] state1, floating[::1] state2,
                  Py_ssize_t step, double loss_sum=0, double weight_sum=0, *,
                  const double[::1] dropout=None, uint64_t seed=0,
                  double[::1] hits=None, int threads=0):
    """Train on batches ``first_batch`` .. ``first_batch + n_batches - 1`` of an epoch.

    Batch b holds rows ``order[b*batch_size : (b+1)*batch_size]`` of X (the last one
    may be shorter);
    ``order`` None means rows in their stored order, read in place. The loss, its
    parameters, targets and weights as in ``loss_and_grads``. Per batch: gather
    (and prefetch the next batch) -> forward -> fused loss and output delta ->
    backward, each layer's optimizer update (step number ``step + 1``, ``step + 2``,
    ...) following its backward step. ``optimizer``: the update rule, its
    hyperparameters and the gradient's clip norm (``Optimizer._kernel_args``);
    ``state1`` and ``state2`` its state arrays (None where its rule has none).
    ``dropout``: each layer's dropout rate (None: none), its masks drawn from
    ``seed`` and the step number (_dropout.pxi).

    Returns ``(loss_sum, weight_sum, batches_done, steps_done, status)``: the given
    ``loss_sum`` plus, over finished batches, (batch loss x batch weight), the given
    ``weight_sum`` plus their weights (carrying the sums through the calls of an epoch
    keeps the epoch's loss independent of how it was cut into calls), how many
    batches were finished, how many optimizer steps were applied (a batch whose
    weights are all zero is skipped without a step), and ``Status.OK`` or
    ``Status.NONFINITE_LOSS`` when a batch's loss was NaN or infinite (that batch's
    update is not applied and it is not counted as finished).

    ``hits`` (one value), unless None: for the classification losses, each finished
    batch's weighted count of rows classified right by its output before its update
    is added to ``hits[0]`` (an epoch's running accuracy is that over
    ``weight_sum``).

    ``threads`` (>= 1), unless 0: at most that many threads in this call's parallel
    regions, within the limits that nn_team_size already applies. No result depends
    on it.
    """
    cdef Py_ssize_t L = sizes.shape[0] - 1, b, rows, done = 0, steps = 0
    cdef bint fm = fm_layout(&sizes[0], L)     # see feature_major
    # The feature-major layout pads the batch to whole vectors (workspace_size
    # counts the padding).
    cdef Py_ssize_t cap = fm_padded(batch_size) if fm else batch_size
    cdef double batch_loss, weight
    cdef int status = OK
    cdef OptimizerConfig cfg = _optimizer_config(optimizer)
    cdef LossConfig lcfg
    cdef Dropout drop
    cdef BatchSource src
    cdef const floating* Xb
    cdef const floating* Tb
    cdef const Py_ssize_t* lb
    cdef const floating* wb
    cdef floating* s1
    cdef floating* s2
    cdef bint prefetch
    cdef double* hits_p = NULL
    _loss_config(loss, loss_params, sizes[L], &lcfg)
    _check_training(params, grads, sizes, acts, &lcfg, X, T, labels, sample_weight,
                    order, work, batch_size, first_batch, n_batches, &cfg, state1, state2,
                    dropout)
    drop.rates = &dropout[0] if dropout is not None else NULL
    drop.seed = seed
    if hits is not None:
        if hits.shape[0] < 1:
            raise ValueError("kernel: hits must hold one value")
        hits_p = &hits[0]
    s1 = &state1[0] if state1 is not None and state1.shape[0] else NULL
    s2 = &state2[0] if state2 is not None and state2.shape[0] else NULL
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
    # Prefetching pays when X is beyond the L2 cache (about 1 MiB on the CPUs
    # measured); below that, the hints cost more than the misses they avoid.
    prefetch = order is not None and <double>src.n * src.n0 * sizeof(floating) > 1048576
    src.ahead = _GATHER_AHEAD if prefetch else 0
    src.prefetch_next = prefetch and batch_size * src.n0 * sizeof(floating) <= 65536
    if threads < 0:
        raise ValueError(f"kernel: threads must be >= 0; got {threads}")
    _ensure_blas(_may_use_blas(sizes, batch_size))
    nn_set_call_cap(threads)
    src.parts = nn_team_size()
    with nogil:
        for b in range(first_batch, first_batch + n_batches):
            rows = load_batch(&src, b, b + 1 < first_batch + n_batches, &work[0],
                              &sizes[0], L, cap, &Xb, &Tb, &lb, &wb)
            if rows == 0:
                break
            weight = batch_weight(wb, rows)
            if weight <= 0:
                # Every row of this batch has weight zero: the weighted mean is
                # undefined, and the batch carries no information. Skip it.
                done += 1
                continue
            batch_loss = train_step(&params[0], &grads[0], &sizes[0], &acts[0], L, &lcfg,
                                    fm, Xb, rows, Tb, src.kt, lb, wb, weight,
                                    &work[0], cap, &cfg, step + steps + 1, s1, s2,
                                    &drop if dropout is not None else NULL, hits_p)
            if not isfinite(batch_loss):
                status = NONFINITE_LOSS
                break
            loss_sum += batch_loss * weight
            weight_sum += weight
            steps += 1
            done += 1
        nn_set_call_cap(0)
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


include "_predict.pxi"

# The def entry points of data-parallel training (grad_sums, apply_gradient) and of
# training K networks at once (train_many).
include "_distributed.pxi"
include "_many.pxi"
