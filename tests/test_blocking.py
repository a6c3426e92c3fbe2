"""The matrix product's cache blocking: derived from the CPU's cache sizes by the rule
of nncore/csrc/blocking.h, and never a cause of a different result.

Each compiled build this CPU runs is tested with its blocking forced to several
choices (one register tile and one panel per block, a few of them, none at all):
products across every block edge stay within rounding of NumPy's and are the same,
bit for bit, as under the blocking the module chose at import.
"""
import contextlib
import importlib

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from nncore import _cpu, _dispatch

BUILDS = []
for _name in _dispatch.supported():
    with contextlib.suppress(ImportError):
        BUILDS.append(importlib.import_module("nncore." + _dispatch._MODULES[_name]))
BUILD_IDS = [m.__name__.rsplit(".", 1)[-1] for m in BUILDS]
SIZES = {"float32": 4, "float64": 8}


@pytest.fixture(params=BUILDS, ids=BUILD_IDS)
def build(request):
    """A build of the kernels, its import-time blocking restored after the test."""
    module = request.param
    before = module.get_blocking()
    yield module
    module.set_blocking(before["l2"], before["l3"])


def expected_blocking(l2, l3, kc, mr, nr, size):
    """The rule of blocking.h, written out: half of L2 holds A's mc x kc block, half of
    L3 holds B's kc x nc block; mc in whole tiles, nc in whole panels, at least one."""
    mc = max(mr, (l2 // 2) // (kc * size) // mr * mr)
    nc = max(nr, (l3 // 2) // (kc * size) // nr * nr)
    return mc, nc


@pytest.mark.parametrize("l2,l3", [(2 << 20, 32 << 20), (1 << 20, 32 << 20),
                                   (256 << 10, 8 << 20), (48 << 10, 1 << 20), (1, 1)])
def test_blocking_follows_the_cache_sizes(build, l2, l3):
    build.set_blocking(l2, l3)
    info = build.get_blocking()
    assert (info["l2"], info["l3"]) == (l2, l3)
    assert info["kc"] == 256          # fixed: it sets the order of every sum
    for dtype, size in SIZES.items():
        sizes = info[dtype]
        assert sizes["nr"] == 2 * build.VECTOR_BYTES // size
        assert (sizes["mc"], sizes["nc"]) == expected_blocking(l2, l3, info["kc"],
                                                               info["mr"], sizes["nr"], size)


def test_smaller_caches_give_smaller_blocks(build):
    build.set_blocking(2 << 20, 32 << 20)
    big = build.get_blocking()
    build.set_blocking(1 << 20, 16 << 20)
    small = build.get_blocking()
    for dtype in SIZES:
        assert small[dtype]["mc"] < big[dtype]["mc"]
        assert small[dtype]["nc"] < big[dtype]["nc"]


def test_unknown_sizes_take_the_fallback(build):
    build.set_blocking(0, 0)
    info = build.get_blocking()
    assert info["l2"] > 0 and info["l3"] > info["l2"]
    build.set_blocking(info["l2"], info["l3"])
    assert build.get_blocking() == info


def test_import_blocks_for_this_cpu(build):
    """Every build, however imported, blocks for the sizes _cpu reads."""
    sizes = _cpu.cache_sizes()
    info = build.get_blocking()
    build.set_blocking(0, 0)
    defaults = build.get_blocking()
    assert info["l2"] == (sizes["l2"] or defaults["l2"])
    assert info["l3"] == (sizes["l3"] or defaults["l3"])


@pytest.mark.parametrize("l2,l3,bad", [(-1, 0, "l2"), (0, -5, "l3")])
def test_set_blocking_rejects_negative_sizes(build, l2, l3, bad):
    before = build.get_blocking()
    with pytest.raises(ValueError, match=bad):
        build.set_blocking(l2, l3)
    assert build.get_blocking() == before


def test_set_blocking_rejects_non_integers(build):
    with pytest.raises(TypeError):
        build.set_blocking("2M", 0)


def _fake_cache(root, entries):
    for i, (level, kind, size) in enumerate(entries):
        d = root / f"index{i}"
        d.mkdir()
        (d / "level").write_text(f"{level}\n")
        (d / "type").write_text(f"{kind}\n")
        (d / "size").write_text(f"{size}\n")
    return str(root)


def test_cache_sizes_read_from_sysfs(tmp_path):
    root = _fake_cache(tmp_path, [(1, "Data", "48K"), (1, "Instruction", "32K"),
                                  (2, "Unified", "1024K"), (3, "Unified", "32M")])
    assert _cpu.cache_sizes(root) == {"l1d": 48 << 10, "l2": 1 << 20, "l3": 32 << 20}


def test_cache_sizes_unknown_are_zero(tmp_path):
    assert _cpu.cache_sizes(str(tmp_path / "missing")) == {"l1d": 0, "l2": 0, "l3": 0}
    root = _fake_cache(tmp_path, [(1, "Instruction", "32K"), (2, "Unified", "lots")])
    assert _cpu.cache_sizes(root) == {"l1d": 0, "l2": 0, "l3": 0}


def _blockings(build):
    """(l2, l3) choices: one tile and one panel per block; blocks of a few tiles and
    panels (and several k-blocks) in float32; the module's own; none at all."""
    own = build.get_blocking()
    kc, mr = own["kc"], own["mr"]
    nr = own["float32"]["nr"]
    few = (2 * 3 * mr * kc * 4, 2 * 2 * nr * kc * 4)   # float32: mc = 3 tiles, nc = 2 panels
    return {"tiles": (1, 1), "few": few, "own": (own["l2"], own["l3"]),
            "none": (1 << 50, 1 << 50)}


# Row counts, column counts and depths on both sides of the block edges of the "few"
# blocking (mc = 3 tiles of 4, 6 or 8 rows; nc = 2 panels of 8 to 32 columns), of
# several k-blocks (K > 256) and of a one-column C.
SHAPES = [(1, 1, 1), (7, 9, 3), (23, 31, 257), (25, 33, 100), (49, 65, 513), (50, 129, 40),
          (97, 64, 300), (130, 1, 90), (1, 140, 260), (200, 70, 520)]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("threads", [1, 2])
def test_products_across_block_edges_match_numpy_and_each_other(build, dtype, threads):
    rng = np.random.default_rng(7)
    tol = 1e-5 if dtype == "float32" else 1e-12
    choices = _blockings(build)
    for M, N, K in SHAPES:
        for ta in (False, True):
            for tb in (False, True):
                A = rng.normal(size=(K, M) if ta else (M, K)).astype(dtype)
                B = rng.normal(size=(N, K) if tb else (K, N)).astype(dtype)
                C0 = rng.normal(size=(M, N)).astype(dtype)
                exact = (A.T if ta else A).astype(np.float64) @ \
                    (B.T if tb else B).astype(np.float64)
                for accumulate in (False, True):
                    results = {}
                    for name, (l2, l3) in choices.items():
                        build.set_blocking(l2, l3)
                        C = C0.copy() if accumulate else np.full((M, N), np.nan, dtype)
                        with threadpool_limits(threads):
                            build.matmul_into(A, B, C, ta, tb, accumulate, 1)
                        results[name] = C
                    want = exact + C0 if accumulate else exact
                    where = f"{M}x{N}x{K} ta={ta} tb={tb} accumulate={accumulate}"
                    assert np.abs(results["own"] - want).max() <= \
                        tol * (np.sqrt(K) + 1) * 4, where
                    for name, C in results.items():
                        assert np.array_equal(C, results["own"]), f"{name}: {where}"
