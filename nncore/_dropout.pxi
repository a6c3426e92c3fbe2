# --------------------------------------------------------------------------------
# Dropout: masks from a counter-based generator
# --------------------------------------------------------------------------------
# (Included by nncore/_kernels.pyx, in the order there: the kernels are one compiled
# module.)

# Inverted dropout on a layer's output while fit trains: unit j of sample r (its
# position in the batch) is kept with probability 1 - p and then scaled by
# 1 / (1 - p). Whether it is kept is a pure function of (seed, step t, layer l, r, j),
# not of a generator's running state: so the masks are the same bit for bit
# whatever the thread count, the layout (row-major or feature-major) and however an
# epoch is split into kernel calls, and reference.dropout_mask computes them in NumPy:
#
#   mix(z)  = splitmix64's finalizer: z ^= z >> 30; z *= 0xbf58476d1ce4e5b9;
#             z ^= z >> 27; z *= 0x94d049bb133111eb; z ^= z >> 31   (mod 2^64)
#   key     = mix(mix(mix(seed) + t) + l)
#   keep    = (mix(key + r * 2^32 + j) >> 11) >= ceil(p * 2^53)
#
# The top 53 bits of the hash are a uniform integer u, and u >= ceil(p 2^53) has
# probability 1 - ceil(p 2^53) / 2^53, 1 - p to within 2^-53.

# One layer's dropout while training, and the seed its masks are drawn from.
ctypedef struct Dropout:
    const double* rates         # each layer's rate p, L values (0: no dropout)
    uint64_t seed


cdef inline uint64_t mix64(uint64_t z) noexcept nogil:
    """splitmix64's finalizer: a bijection on 64-bit integers whose every output bit
    depends on every input bit."""
    z = (z ^ (z >> 30)) * <uint64_t>0xbf58476d1ce4e5b9
    z = (z ^ (z >> 27)) * <uint64_t>0x94d049bb133111eb
    return z ^ (z >> 31)


cdef inline bint dropped(const Dropout* drop, Py_ssize_t l) noexcept nogil:
    """Whether layer l (1..L) drops units (``drop`` NULL: no layer does)."""
    return drop != NULL and drop.rates[l - 1] > 0


cdef void dropout_apply(const Dropout* drop, Py_ssize_t l, Py_ssize_t t,
                        Py_ssize_t rows, Py_ssize_t N, Py_ssize_t rs, Py_ssize_t cs,
                        const floating* A, floating* out) noexcept nogil:
    """out[r rs + j cs] = A[r rs + j cs] / (1 - p) where unit j of sample r is kept
    at step t in layer l, else 0, for r < rows, j < N (out may be A).

    The forward pass applies it to the layer's output; the backward pass to
    dLoss/d(dropped output), which gives dLoss/d(output): the same mask and scale.
    """
    cdef double p = drop.rates[l - 1]
    cdef uint64_t threshold = <uint64_t>ceil(p * 9007199254740992.0)   # 2^53
    cdef uint64_t key = mix64(mix64(mix64(drop.seed) + <uint64_t>t) + <uint64_t>l)
    cdef floating scale = <floating>(1.0 / (1.0 - p))
    cdef Py_ssize_t r, j, i
    if cs == 1:
        for r in range(rows):
            for j in range(N):
                i = r * rs + j
                out[i] = A[i] * scale if (mix64(key + (<uint64_t>r << 32) + <uint64_t>j)
                                          >> 11) >= threshold else 0
    else:
        for j in range(N):
            for r in range(rows):
                i = r * rs + j * cs
                out[i] = A[i] * scale if (mix64(key + (<uint64_t>r << 32) + <uint64_t>j)
                                          >> 11) >= threshold else 0
