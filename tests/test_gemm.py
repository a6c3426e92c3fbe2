"""The matrix multiply behind every layer, held to NumPy.

Each compiled build of the kernels (portable, AVX2, AVX-512: whichever this CPU runs)
is tested, on both of its paths (the kernels' own tiled loop and BLAS), for both
dtypes, on shapes that hit full register tiles, partial tiles, narrow panels, K
blocks and single rows or columns.
"""
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from threadpoolctl import threadpool_limits

from nncore import _dispatch

BUILDS = [_dispatch.build(name) for name in _dispatch.available()]


def _product(A, B, ta, tb):
    return (A.T if ta else A) @ (B.T if tb else B)


@pytest.mark.slow
@pytest.mark.parametrize("build", BUILDS, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("path", [1, 2], ids=["own", "blas"])
@settings(max_examples=60, deadline=None)
@given(M=st.integers(1, 40), N=st.integers(1, 70), K=st.integers(1, 300),
       ta=st.booleans(), tb=st.booleans(), accumulate=st.booleans(),
       seed=st.integers(0, 2**32 - 1))
def test_matmul_matches_numpy(build, dtype, path, M, N, K, ta, tb, accumulate, seed):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(K, M) if ta else (M, K)).astype(dtype)
    B = rng.normal(size=(N, K) if tb else (K, N)).astype(dtype)
    C = rng.normal(size=(M, N)).astype(dtype)
    expected = _product(A.astype(np.float64), B.astype(np.float64), ta, tb)
    if accumulate:
        expected += C
    build.matmul_into(A, B, C, ta, tb, accumulate, path)
    tol = 1e-5 if dtype == "float32" else 1e-12
    scale = np.sqrt(K) + (1 if accumulate else 0)
    assert np.abs(C - expected).max() <= tol * scale * 4


@pytest.mark.parametrize("build", BUILDS, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
@pytest.mark.parametrize("shape", [(256, 1024, 784), (33, 100, 600), (31, 40, 489),
                                   (1024, 10, 300), (1, 1, 1)])
@pytest.mark.parametrize("threads", [1, 2])
def test_matmul_large_and_degenerate_shapes(build, shape, threads):
    """Several K blocks (K > 256), many panels, fewer panels than threads, the 1x1x1
    product; on one thread and on two (the threaded paths split panels or rows, and
    must give the same bits as one thread), writing C and adding to it."""
    M, N, K = shape
    rng = np.random.default_rng(0)
    A = rng.normal(size=(M, K)).astype(np.float32)
    B = rng.normal(size=(K, N)).astype(np.float32)
    C0 = rng.normal(size=(M, N)).astype(np.float32)
    expected = A.astype(np.float64) @ B.astype(np.float64)
    for accumulate in (False, True):
        C = C0 if accumulate else np.full((M, N), np.nan, np.float32)
        with threadpool_limits(1):
            single = C.copy()
            build.matmul_into(A, B, single, False, False, accumulate, 1)
        want = expected + C0 if accumulate else expected
        assert np.abs(single - want).max() <= 1e-5 * np.sqrt(K) * 4
        with threadpool_limits(threads):
            for _ in range(3):      # races, if any, show up as run-to-run differences
                out = C.copy()
                build.matmul_into(A, B, out, False, False, accumulate, 1)
                np.testing.assert_array_equal(out, single)


@pytest.mark.parametrize("build", BUILDS, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_matmul_rejects_mismatched_shapes(build):
    A = np.ones((3, 4), np.float32)
    with pytest.raises(ValueError, match="shapes do not agree"):
        build.matmul_into(A, np.ones((5, 2), np.float32), np.ones((3, 2), np.float32),
                          False, False, False, 0)
    with pytest.raises(ValueError, match="shapes do not agree"):
        build.matmul_into(A, np.ones((4, 2), np.float32), np.ones((3, 3), np.float32),
                          False, False, False, 0)


def test_dispatch_picks_a_supported_build():
    assert _dispatch.variant in _dispatch.supported()
    assert _dispatch.kernels.__name__ == "nncore." + _dispatch._MODULES[_dispatch.variant]
    # the best build this machine has, unless NNCORE_KERNELS forces one (as CI does)
    forced = os.environ.get("NNCORE_KERNELS", "").strip().lower()
    assert _dispatch.variant == (forced or _dispatch.available()[0])


def test_use_switches_the_build_for_a_block_and_restores_it():
    chosen, forward = _dispatch.variant, _dispatch.kernels.forward
    for name in _dispatch.available():
        with _dispatch.use(name) as module:
            assert module is _dispatch.build(name)
            assert _dispatch.variant == name
            assert _dispatch.kernels.forward is module.forward
        assert _dispatch.variant == chosen and _dispatch.kernels.forward is forward
    with pytest.raises(ValueError, match="'sse9' is not available"), \
            _dispatch.use("sse9"):
        pass
    assert _dispatch.variant == chosen


@pytest.mark.parametrize("build", BUILDS, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("M,K", [(1, 1), (2, 16), (31, 15), (33, 17), (100, 300),
                                 (3000, 200)])
@pytest.mark.parametrize("ta", [False, True])
@pytest.mark.parametrize("tb", [False, True])
def test_one_column_products(build, dtype, M, K, ta, tb):
    """A one-column C (a layer of width 1, or its weight gradient) takes its own
    paths: dot products when A's rows are contiguous, else the transposed one-row
    product; by its shape alone, so a product large enough to thread (3000 x 200)
    gives the same bits at one thread and at two."""
    rng = np.random.default_rng(M * 1000 + K)
    A = rng.normal(size=(K, M) if ta else (M, K)).astype(dtype)
    B = rng.normal(size=(1, K) if tb else (K, 1)).astype(dtype)
    C0 = rng.normal(size=(M, 1)).astype(dtype)
    expected = _product(A.astype(np.float64), B.astype(np.float64), ta, tb)
    tol = (1e-5 if dtype == "float32" else 1e-12) * (np.sqrt(K) + 1) * 4
    for accumulate in (False, True):
        results = []
        for threads in (1, 2):
            with threadpool_limits(threads):
                C = C0.copy() if accumulate else np.full((M, 1), np.nan, dtype)
                build.matmul_into(A, B, C, ta, tb, accumulate, 1)
            want = expected + C0 if accumulate else expected
            assert np.abs(C - want).max() <= tol
            results.append(C)
        np.testing.assert_array_equal(results[0], results[1])


@pytest.mark.parametrize("build", BUILDS, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("N", [15, 16, 17, 32, 33, 48])
@pytest.mark.parametrize("K", [15, 16, 17, 33, 257])
def test_transposed_b_at_block_edges(build, dtype, N, K):
    """B read transposed (a layer's dLoss/dA = delta W^T) is packed in 16 x 16 blocks
    on the AVX-512 float build, with scalar edges: sizes on both sides of a block."""
    rng = np.random.default_rng(N * 1000 + K)
    M = 9
    A = rng.normal(size=(M, K)).astype(dtype)
    B = rng.normal(size=(N, K)).astype(dtype)
    C = np.full((M, N), np.nan, dtype)
    build.matmul_into(A, B, C, False, True, False, 1)
    expected = A.astype(np.float64) @ B.astype(np.float64).T
    tol = (1e-5 if dtype == "float32" else 1e-12) * np.sqrt(K) * 4
    assert np.abs(C - expected).max() <= tol


@pytest.mark.parametrize("build", BUILDS, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("M", [1, 2, 7, 32])
@pytest.mark.parametrize("N", [2, 10, 16])
@pytest.mark.parametrize("K", [1, 2, 16, 33])
@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True)])
def test_tiny_products(build, dtype, M, N, K, ta, tb):
    """Products of a few hundred multiply-adds (a tiny network's layers) skip packing
    on the AVX-512 build: rows of C computed one at a time, B rows read in place."""
    rng = np.random.default_rng(M * 10000 + N * 100 + K)
    A = rng.normal(size=(K, M) if ta else (M, K)).astype(dtype)
    B = rng.normal(size=(N, K) if tb else (K, N)).astype(dtype)
    C0 = rng.normal(size=(M, N)).astype(dtype)
    expected = _product(A.astype(np.float64), B.astype(np.float64), ta, tb)
    tol = (1e-5 if dtype == "float32" else 1e-12) * (np.sqrt(K) + 1) * 4
    for accumulate in (False, True):
        C = C0.copy() if accumulate else np.full((M, N), np.nan, dtype)
        build.matmul_into(A, B, C, ta, tb, accumulate, 1)
        want = expected + C0 if accumulate else expected
        assert np.abs(C - want).max() <= tol


@pytest.mark.parametrize("build", BUILDS, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("N", [3, 17, 40, 64, 100, 130])
@pytest.mark.parametrize("K", [1, 7, 64, 300, 520, 1100])
@pytest.mark.parametrize("ta", [False, True])
def test_one_row_products_give_the_bits_of_the_tiles(build, dtype, N, K, ta):
    """A one-row C (a layer's pass over one sample) is summed with B read in place,
    in the order of the register tiles: row 0 of a two-row product, which the tiles
    compute, has the same bits, for every K block split and partial vector, written
    or added to C, at one thread or two. (The products too small to pack, C at most a
    vector wide, take their own path at any row count; they are compared to NumPy.)"""
    rng = np.random.default_rng(N * 10000 + K)
    A = rng.normal(size=(K, 2) if ta else (2, K)).astype(dtype)
    B = rng.normal(size=(K, N)).astype(dtype)
    C0 = rng.normal(size=(2, N)).astype(dtype)
    one_row = np.ascontiguousarray(A[:, :1] if ta else A[:1])
    expected = _product(A.astype(np.float64), B.astype(np.float64), ta, False)[:1]
    tol = (1e-5 if dtype == "float32" else 1e-12) * (np.sqrt(K) + 1) * 4
    lanes = build.VECTOR_BYTES // np.dtype(dtype).itemsize
    direct = lanes >= N and K <= 512   # (nn_gemm_direct: one sum over all of K)
    for threads in (1, 2):
        with threadpool_limits(threads):
            for accumulate in (False, True):
                two = C0.copy() if accumulate else np.full((2, N), np.nan, dtype)
                build.matmul_into(A, B, two, ta, False, accumulate, 1)
                one = C0[:1].copy() if accumulate else np.full((1, N), np.nan, dtype)
                build.matmul_into(one_row, B, one, ta, False, accumulate, 1)
                want = expected + C0[:1] if accumulate else expected
                assert np.abs(one - want).max() <= tol
                if not direct:
                    np.testing.assert_array_equal(one, two[:1])
