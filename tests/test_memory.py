"""Memory: no allocation that grows with the number of epochs or calls (tracemalloc,
and resident memory over thousands of epochs), and inputs too large to fit give a
MemoryError with sizes in the message, not a crash."""
import gc
import os
import sys
import tracemalloc

import numpy as np
import pytest

import nncore
from nncore import _memory

from _helpers import assert_same_state, run_child, state_of

try:
    import psutil
except ImportError:          # the test extra has it; /proc is the fallback
    psutil = None


def _rss():
    if psutil is not None:
        return psutil.Process().memory_info().rss
    if os.path.exists("/proc/self/statm"):
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    pytest.skip("no way to read the resident set size")


def _problem(loss="cross_entropy", n=256, dtype="float32"):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 8)).astype(dtype)
    y = rng.integers(0, 3, size=n) if loss == "cross_entropy" else \
        rng.normal(size=(n, 3)).astype(dtype)
    net = nncore.Network([nncore.Dense(8, 32, "gelu"), nncore.Dense(32, 3)], loss=loss,
                         dtype=dtype, seed=0)
    return net, X, y


def _traced(fn):
    """(current, peak) bytes traced by tracemalloc across fn()."""
    gc.collect()
    tracemalloc.reset_peak()
    start = tracemalloc.get_traced_memory()[0]
    fn()
    gc.collect()
    current, peak = tracemalloc.get_traced_memory()
    return current - start, peak - start


@pytest.fixture
def tracing():
    tracemalloc.start()
    try:
        yield
    finally:
        tracemalloc.stop()


@pytest.mark.slow
@pytest.mark.parametrize("batch_size", [1, 16, 10**6])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_further_epochs_allocate_no_more_than_a_constant(tracing, batch_size, optimizer):
    """fit(5 epochs) and fit(55 epochs): the same peak and the same memory left
    behind, except the History's 50 more entries. Covers one batch per epoch, many
    batches per kernel call, and a batch of one row (256 batches per epoch)."""
    net, X, y = _problem()
    opt = nncore.SGD(1e-3, momentum=0.9) if optimizer == "sgd" else nncore.Adam(1e-3)
    kw = dict(batch_size=batch_size, optimizer=opt, sample_weight=np.ones(len(X)))
    net.fit(X, y, epochs=2, **kw)                         # warm up: workspace, state
    net.history = None
    cur5, peak5 = _traced(lambda: net.fit(X, y, epochs=5, **kw))
    net.history = None
    cur55, peak55 = _traced(lambda: net.fit(X, y, epochs=55, **kw))
    # a float and list growth per value the History records each epoch (loss, lr,
    # time, ...)
    per_epoch_budget = 100 * len(net.history.history)
    assert cur55 - cur5 <= 50 * per_epoch_budget, (cur5, cur55)
    assert peak55 - peak5 <= 50 * per_epoch_budget + 4096, (peak5, peak55)


@pytest.mark.slow
def test_repeated_calls_leave_nothing_behind(tracing):
    net, X, y = _problem()
    net.fit(X, y, epochs=1)
    for fn in (lambda: net.predict(X), lambda: net.loss(X, y),
               lambda: net.loss_and_grads(X, y), lambda: net.evaluate(X, y),
               lambda: net.fit(X, y, epochs=1)):
        fn()
        first, _ = _traced(fn)
        many, _ = _traced(lambda: [fn() for _ in range(200)])
        assert many - first <= 8192, (first, many)


@pytest.mark.slow
def test_long_run_has_flat_resident_memory():
    """10000 epochs (40000 batches, 10000+ kernel calls) of a small network plus
    thousands of inference calls: resident memory does not grow. A leak of even one
    small array per kernel call would add tens of MiB."""
    rng = np.random.default_rng(2)
    X = rng.normal(size=(256, 16)).astype(np.float32)
    y = rng.integers(0, 4, size=256)
    w = rng.uniform(0.5, 1.5, size=256)
    net = nncore.Network([nncore.Dense(16, 16, "relu"), nncore.Dense(16, 4)],
                         loss="cross_entropy", seed=0)
    opt = nncore.Adam(1e-3)
    net.fit(X, y, epochs=200, batch_size=64, optimizer=opt, sample_weight=w)
    for _ in range(200):
        net.predict(X)
        net.loss_and_grads(X, y)
    gc.collect()
    start = _rss()
    samples = []
    for _ in range(20):
        net.fit(X, y, epochs=500, batch_size=64, sample_weight=w)
        for _ in range(100):
            net.predict(X)
            net.loss_and_grads(X, y, w)
        gc.collect()
        samples.append(_rss() - start)
    assert opt.step == 200 * 4 + 20 * 500 * 4
    assert max(samples) < 4 * 2**20, [s // 1024 for s in samples]


# --------------------------------------------------------------- too large to fit
def test_parameters_beyond_any_address_space():
    for layers, what in [([nncore.Dense(2**24, 2**24)], "PiB"),
                         ([nncore.Dense(2**31 - 1, 2**31 - 1),
                           nncore.Dense(2**31 - 1, 1)], "PiB")]:
        with pytest.raises(MemoryError) as info:
            nncore.Network(layers)
        message = str(info.value)
        assert "the parameters" in message and what in message and "shape (" in message


def test_parameters_larger_than_physical_memory():
    ram = _memory.physical_memory()
    if ram is None:
        pytest.skip("physical memory size unknown here")
    fan_out = 2 * ram // (4 * 4096) + 1          # float32 params of about twice the RAM
    with pytest.raises(MemoryError) as info:
        nncore.Network([nncore.Dense(4096, fan_out)])
    message = str(info.value)
    assert "the parameters" in message and "physical memory" in message
    assert "GiB" in message or "TiB" in message


@pytest.mark.slow
def test_workspace_larger_than_memory():
    ram = _memory.physical_memory()
    if ram is None:
        pytest.skip("physical memory size unknown here")
    width = 2**16
    net = nncore.Network([nncore.Dense(1, width, "relu"), nncore.Dense(width, 1)], seed=0)
    rows = 2 * ram // (16 * width) + 1            # each row needs > 16 * width bytes
    X = np.zeros((rows, 1), np.float32)
    net.fit(X[:4], X[:4], epochs=1)
    before = state_of(net)
    with pytest.raises(MemoryError) as info:
        net.fit(X, X, batch_size=rows)
    message = str(info.value)
    assert f"workspace for batches of {rows} rows" in message and "GiB" in message
    assert_same_state(before, state_of(net))
    net.fit(X[:64], X[:64], batch_size=32)           # still usable
    # a batch size that makes the kernel's size arithmetic overflow: refused first
    with pytest.raises(MemoryError, match="workspace"):
        net._workspace(2**40)


def test_input_conversion_larger_than_memory():
    net = nncore.Network([nncore.Dense(1, 2)], seed=0)
    huge = np.broadcast_to(np.float64(1.0), (2**40, 1))     # a view: no memory
    with pytest.raises(MemoryError) as info:
        net.predict(huge)
    message = str(info.value)
    assert "X" in message and "(1099511627776, 1)" in message and "TiB" in message


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS, /proc")
def test_memory_error_under_an_address_space_limit():
    """In a child limited to its current address space + 1.5 GiB: a 2 GiB parameter
    array and a 2 GiB workspace are refused by the allocator itself (the physical
    memory check does not apply), and the process carries on."""
    code = r"""
import json, resource
import numpy as np
import nncore

with open("/proc/self/status") as f:
    vm = next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmSize:"))
limit = vm + 3 * 2**29
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
out = {}
try:
    nncore.Network([nncore.Dense(16384, 32768)])
    out["params"] = None
except MemoryError as e:
    out["params"] = str(e)
net = nncore.Network([nncore.Dense(8, 65536, "relu"), nncore.Dense(65536, 1)], seed=0)
X = np.ones((2048, 8), np.float32)
y = np.ones((2048, 1), np.float32)
before = [p.copy() for p in net.params]
try:
    net.fit(X, y, batch_size=2048, optimizer=nncore.SGD(1e-3))
    out["workspace"] = None
except MemoryError as e:
    out["workspace"] = str(e)
out["unchanged"] = (all(np.array_equal(a, b) for a, b in zip(before, net.params))
                    and net.optimizer is None)
h = net.fit(X[:64], y[:64], batch_size=16, epochs=1, optimizer=nncore.SGD(1e-3))
out["later_fit_ok"] = bool(np.isfinite(h.loss).all())
print(json.dumps(out))
"""
    got = run_child(code)
    assert got["params"] and "2.0 GiB" in got["params"]
    assert "the parameters" in got["params"]
    assert got["workspace"] and "workspace for batches of 2048 rows" in got["workspace"]
    assert "GiB" in got["workspace"]
    assert got["unchanged"] and got["later_fit_ok"]


@pytest.mark.slow
def test_import_is_light():
    """Importing nncore loads NumPy, threadpoolctl and the kernels, not SciPy's linear
    algebra (about 29 MiB): the kernels load SciPy's BLAS only when a product may
    need it, which the AVX-512 build's products never do. After a fit that needs no
    BLAS it is still not loaded; matmul_into(path=2) loads it on demand."""
    got = run_child(
        "import json, sys, numpy as np, nncore\n"
        "before = 'scipy.linalg' in sys.modules\n"
        "net = nncore.Network([nncore.Dense(2, 4, 'tanh'), nncore.Dense(4, 1)], seed=0)\n"
        "net.fit(np.ones((8, 2)), np.ones(8), epochs=1)\n"
        "after_fit = 'scipy.linalg' in sys.modules\n"
        "a = np.ones((3, 3), np.float32); c = np.zeros((3, 3), np.float32)\n"
        "nncore._dispatch.kernels.matmul_into(a, a, c, False, False, False, 2)\n"
        "print(json.dumps([before, after_fit, 'scipy.linalg' in sys.modules,\n"
        "                  float(c[0, 0])]))\n")
    assert got == [False, False, True, 3.0]
