# --------------------------------------------------------------------------------
# Matrix products
# --------------------------------------------------------------------------------
# (Included by nncore/_kernels.pyx, in the order there: the kernels are one compiled
# module.)

cdef inline void blas_gemm(char transa, char transb, blas_int m, blas_int n, blas_int k,
                           floating alpha, const floating* a, blas_int lda,
                           const floating* b, blas_int ldb, floating beta,
                           floating* c, blas_int ldc) noexcept nogil:
    """Column-major C := alpha * op(A) op(B) + beta * C through SciPy's BLAS."""
    if floating is float:
        _sgemm(&transa, &transb, &m, &n, &k, &alpha, <float*>a, &lda,
              <float*>b, &ldb, &beta, c, &ldc)
    else:
        _dgemm(&transa, &transb, &m, &n, &k, &alpha, <double*>a, &lda,
              <double*>b, &ldb, &beta, c, &ldc)


cdef void matmul(bint trans_a, bint trans_b, Py_ssize_t M, Py_ssize_t N, Py_ssize_t K,
                 const floating* A, const floating* B, floating beta, floating* C,
                 floating* pack) noexcept nogil:
    """Row-major C(M x N) := op(A) op(B) + beta * C, all operands dense.

    op(A) is M x K (A stored K x M when ``trans_a``), op(B) is K x N (B stored N x K
    when ``trans_b``); beta is 0 or 1. ``pack`` holds NN_GEMM_PACK_SIZE(N) values.
    """
    gemm_path(0, trans_a, trans_b, M, N, K, A, B, beta, C, pack)


cdef void gemm_path(Py_ssize_t path, bint trans_a, bint trans_b, Py_ssize_t M,
                    Py_ssize_t N, Py_ssize_t K, const floating* A, const floating* B,
                    floating beta, floating* C, floating* pack) noexcept nogil:
    """matmul with the path chosen: 0 by size, 1 the kernels' own, 2 BLAS."""
    cdef Py_ssize_t lda = M if trans_a else K
    cdef Py_ssize_t ldb = K if trans_b else N
    cdef char ta = b'N', tb = b'N'
    cdef floating one = 1
    # BLAS only once loaded (_ensure_blas): the kernels' own loop takes any product.
    if _sgemm != NULL and (path == 2 or (path == 0 and
                                         <double>M * N * K > <double>NN_BLAS_ABOVE)):
        # Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T.
        if trans_a:
            ta = b'T'
        if trans_b:
            tb = b'T'
        blas_gemm(tb, ta, <blas_int>N, <blas_int>M, <blas_int>K, one,
                  B, <blas_int>ldb, A, <blas_int>lda, beta, C, <blas_int>N)
        return
    own_gemm(M, N, K, A, 1 if trans_a else K, M if trans_a else 1,
             B, 1 if trans_b else N, K if trans_b else 1, C, beta != 0, pack)


cdef inline void own_gemm(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const floating* A,
                          Py_ssize_t rsa, Py_ssize_t csa, const floating* B,
                          Py_ssize_t rsb, Py_ssize_t csb, floating* C, bint accumulate,
                          floating* pack) noexcept nogil:
    """C (+)= op(A) op(B) in the kernels' own loop: element (i, p) of op(A) at
    A[i*rsa + p*csa], (p, j) of op(B) at B[p*rsb + j*csb]; C is M x N, contiguous."""
    if floating is float:
        nn_gemm_f32(M, N, K, A, rsa, csa, B, rsb, csb, C, accumulate, pack)
    else:
        nn_gemm_f64(M, N, K, A, rsa, csa, B, rsb, csb, C, accumulate, pack)
