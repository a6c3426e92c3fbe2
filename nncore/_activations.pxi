# --------------------------------------------------------------------------------
# Activations
# --------------------------------------------------------------------------------
# (Included by nncore/_kernels.pyx, in the order there: the kernels are one compiled
# module.)

cdef inline floating sigmoid(floating z) noexcept nogil:
    """1 / (1 + exp(-z)), without overflow for either sign of z (nn_sigmoid_f32, or in
    float64 nn_sigmoid_f64: libm's two formulas with the kernels' own exp)."""
    if floating is float:
        return nn_sigmoid_f32(z)
    else:
        return nn_sigmoid_f64(z)


cdef inline floating softplus(floating z) noexcept nogil:
    """log(1 + exp(z)) = max(z, 0) + log1p(exp(-|z|)), in double (nn_softplus_f64: its
    loop vectorizes, where libm's exp and log1p are a call per value each)."""
    return <floating>nn_softplus_f64(z)


cdef inline floating gelu(floating z) noexcept nogil:
    """0.5 z (1 + tanh(c (z + 0.044715 z^3))), c = sqrt(2/pi)."""
    cdef floating one = 1   # typed: a bare 1 would make Cython compute in double
    return <floating>0.5 * z * (one + fast_tanh(<floating>GELU_C * (z + <floating>GELU_A * z * z * z)))


cdef inline floating gelu_derivative(floating z) noexcept nogil:
    cdef floating one = 1
    cdef floating t = fast_tanh(<floating>GELU_C * (z + <floating>GELU_A * z * z * z))
    return (<floating>0.5 * (one + t) + <floating>0.5 * z * (one - t * t) * <floating>GELU_C
            * (one + <floating>(3 * GELU_A) * z * z))


cdef inline bint in_place(Py_ssize_t act) noexcept nogil:
    """Whether f'(z) can be computed from a = f(z), so A may overwrite Z."""
    return act != GELU


cdef void bias_activation(Py_ssize_t act, Py_ssize_t rows, Py_ssize_t N,
                          const floating* b, floating* Z, floating* A) noexcept nogil:
    """Z[i, j] += b[j]; A[i, j] = f(Z[i, j]) (A may be Z)."""
    cdef Py_ssize_t i, j, n = rows * N
    cdef floating z
    cdef floating* zr
    cdef floating* ar
    if act == IDENTITY or act == RELU or act == LEAKY_RELU:
        # Cheap activations: fused with the bias, row by row.
        for i in range(rows):
            zr = Z + i * N
            ar = A + i * N
            if act == IDENTITY:
                for j in range(N):
                    ar[j] = zr[j] + b[j]
            elif act == RELU:
                for j in range(N):
                    z = zr[j] + b[j]
                    ar[j] = z if z > 0 else 0
            else:
                for j in range(N):
                    z = zr[j] + b[j]
                    ar[j] = z if z > 0 else <floating>LEAKY_SLOPE * z
        return
    # The rest: bias row by row, then the function over all rows x N values in one flat
    # loop, whose constants the compiler keeps in registers (a loop per row reloads
    # them every row, which cost a narrow layer more than the function itself).
    for i in range(rows):
        zr = Z + i * N
        for j in range(N):
            zr[j] = zr[j] + b[j]
    activate(act, n, Z, A)


cdef void activate(Py_ssize_t act, Py_ssize_t n, const floating* Z,
                   floating* A) noexcept nogil:
    """A[i] = f(Z[i]) over n values (A may be Z)."""
    cdef Py_ssize_t i
    cdef floating z
    if act == IDENTITY:
        if A != Z:
            for i in range(n):
                A[i] = Z[i]
    elif act == RELU:
        for i in range(n):
            A[i] = Z[i] if Z[i] > 0 else 0
    elif act == LEAKY_RELU:
        for i in range(n):
            z = Z[i]
            A[i] = z if z > 0 else <floating>LEAKY_SLOPE * z
    elif act == TANH:
        if floating is float:
            nn_tanh_array_f32(n, Z, A)
        else:
            nn_tanh_array_f64(n, Z, A)
    elif act == SIGMOID:
        if floating is float:
            for i in range(n):
                A[i] = sigmoid(Z[i])
        else:
            nn_sigmoid_array_f64(n, Z, A)
    elif act == ELU:
        for i in range(n):
            z = Z[i]
            A[i] = z if z > 0 else <floating>nn_expm1_neg_f64(z)
    elif act == SOFTPLUS:
        for i in range(n):
            A[i] = softplus(Z[i])
    elif act == GELU:
        for i in range(n):
            A[i] = gelu(Z[i])


cdef void activation_backward(Py_ssize_t act, Py_ssize_t n, const floating* Z,
                              const floating* A, floating* D) noexcept nogil:
    """D *= f'(Z), elementwise over n values.

    f' is taken from the output A = f(Z) wherever it can be (all but gelu), where
    nncore.reference takes it from Z: relu's and leaky_relu's from the sign of A (the
    same as Z's), tanh's as 1 - A^2, sigmoid's as A (1 - A), elu's as A + 1 for
    Z <= 0, softplus's as 1 - exp(-A). That lets A overwrite Z (in_place), which
    saves a buffer per layer and its memory traffic, and spares the backward pass a
    second exp or tanh per value. It is accurate enough: A carries a relative rounding error u,
    so the A forms have an absolute error of a few u on a derivative of at most
    about 1. They lose relative accuracy only where a unit saturates (1 - A^2 as A
    nears 1 or -1, A (1 - A) as A nears 1, A + 1 as A nears -1): there f' itself is within a
    few u of 0, the unit's share of the gradient is that small, and the error is no
    larger than the rounding of the other units' shares. The tests hold the
    gradients to the reference.
    """
    cdef Py_ssize_t i
    cdef floating a
    # Typed: Cython writes a bare 1 as the double 1.0, which would turn the float32
    # loops into double arithmetic with conversions both ways.
    cdef floating one = 1
    if act == IDENTITY:
        return
    elif act == RELU:
        for i in range(n):
            D[i] = D[i] if A[i] > 0 else 0
    elif act == LEAKY_RELU:
        for i in range(n):
            D[i] = D[i] if A[i] > 0 else <floating>LEAKY_SLOPE * D[i]
    elif act == TANH:
        for i in range(n):
            D[i] *= one - A[i] * A[i]
    elif act == SIGMOID:
        for i in range(n):
            D[i] *= A[i] * (one - A[i])
    elif act == ELU:
        # f'(z) = exp(z) = f(z) + 1 for z <= 0.
        for i in range(n):
            a = A[i]
            D[i] = D[i] if a > 0 else D[i] * (a + one)
    elif act == SOFTPLUS:
        # f'(z) = sigmoid(z) = 1 - exp(-f(z)) = -expm1(-f(z)), f(z) >= 0.
        for i in range(n):
            D[i] *= <floating>(-nn_expm1_neg_f64(-A[i]))
    elif act == GELU:
        for i in range(n):
            D[i] *= gelu_derivative(Z[i])
