"""Saving and loading networks: exact round trips, exact resume (also in a fresh
process and on another build of the kernels), pickling and copying, atomic writes,
and a clean ValueError for every kind of bad file."""
import copy
import errno
import hashlib
import io
import json
import os
import pickle
import tracemalloc
import zipfile

import numpy as np
import pytest

import nncore
from nncore import _dispatch
from nncore import io as nnio

from _helpers import (
    LOSS_CASES,
    PicklePayload,
    archive_parts,
    assert_same_network,
    loss_name,
    make_archive,
    run_child,
    saved_bytes,
    trained_net,
)

OPTIMIZERS = {
    "sgd": lambda: nncore.SGD(0.05),
    "sgd_nesterov": lambda: nncore.SGD(0.05, momentum=0.9, nesterov=True,
                                       weight_decay=1e-3),
    "adam": lambda: nncore.Adam(0.01, betas=(0.8, 0.99), eps=1e-7),
    "adamw": lambda: nncore.AdamW(0.01),
    "rmsprop": lambda: nncore.RMSprop(0.005, momentum=0.5, alpha=0.9),
}


def test_load_is_public():
    assert nncore.load is nnio.load
    assert "load" in nncore.__all__


# ------------------------------------------------------------------ round trips
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", LOSS_CASES)
def test_round_trip_predicts_bit_identically(case, dtype, tmp_path):
    net, X, _ = trained_net(loss_name(case), dtype, activations=tuple(nncore.ACTIVATIONS))
    path = tmp_path / "model.npz"
    net.save(path)
    loaded = nncore.load(path)
    assert_same_network(net, loaded)
    assert np.array_equal(loaded.predict(X), net.predict(X))
    assert loaded.predict(X).dtype == np.dtype(dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_resume_after_load_equals_uninterrupted_training(name, dtype, tmp_path):
    whole, X, y = trained_net(dtype=dtype, optimizer=OPTIMIZERS[name](), epochs=4)
    half, _, _ = trained_net(dtype=dtype, optimizer=OPTIMIZERS[name](), epochs=2)
    half.save(tmp_path / "half.npz")
    resumed = nncore.load(tmp_path / "half.npz")
    assert type(resumed.optimizer) is type(half.optimizer)
    resumed.fit(X, y, epochs=2, batch_size=8)        # optimizer=None: the loaded one
    assert_same_network(whole, resumed)


@pytest.mark.slow
def test_resume_in_a_fresh_process(tmp_path):
    """Save after epoch 2; a new interpreter loads, trains 2 more epochs and saves:
    bit for bit the network trained 4 epochs in one go (parameters, Adam's moments
    and step, the shuffling generator)."""
    for dtype in ("float32", "float64"):
        whole, X, y = trained_net(dtype=dtype, epochs=4, seed=7)
        half, _, _ = trained_net(dtype=dtype, epochs=2, seed=7)
        src, dst = tmp_path / f"half-{dtype}.npz", tmp_path / f"resumed-{dtype}.npz"
        half.save(src)
        np.save(tmp_path / "X.npy", X)
        np.save(tmp_path / "y.npy", y)
        run_child(f"""
import json, numpy as np, nncore
net = nncore.load({str(src)!r})
X, y = np.load({str(tmp_path / 'X.npy')!r}), np.load({str(tmp_path / 'y.npy')!r})
net.fit(X, y, epochs=2, batch_size=8)
net.save({str(dst)!r})
print(json.dumps({{"step": net.optimizer.step}}))
""")
        assert_same_network(whole, nncore.load(dst))


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["portable", "avx2", "avx512"])
def test_a_file_loads_on_every_build_of_the_kernels(variant, tmp_path):
    """The file is the same bytes whichever build wrote it, and loads into the same
    parameters in every build. The builds' predictions agree to rounding, not bit
    for bit: the portable build (no FMA, other summation order) differs from the
    vector builds by a few ulps."""
    if variant not in _dispatch.supported():
        pytest.skip(f"this CPU cannot run the {variant} build")
    for dtype, rtol in (("float32", 2e-6), ("float64", 1e-14)):
        net, X, _ = trained_net(dtype=dtype, activations=tuple(nncore.ACTIVATIONS),
                                seed=3)
        path = tmp_path / f"model-{dtype}.npz"
        net.save(path)
        np.save(tmp_path / "X.npy", X)
        out = run_child(f"""
import hashlib, json, numpy as np, nncore
from nncore import _dispatch
net = nncore.load({str(path)!r})
X = np.load({str(tmp_path / 'X.npy')!r})
print(json.dumps({{"variant": _dispatch.variant,
                  "params": hashlib.sha256(np.concatenate(
                      [p.ravel() for p in net.params]).tobytes()).hexdigest(),
                  "predict": net.predict(X).astype(float).tolist()}}))
""", env={"NNCORE_KERNELS": variant})
        assert out["variant"] == variant
        flat = np.concatenate([p.ravel() for p in net.params])
        assert out["params"] == hashlib.sha256(flat.tobytes()).hexdigest()
        mine = net.predict(X)
        theirs = np.array(out["predict"], dtype=dtype)
        np.testing.assert_allclose(theirs, mine, rtol=rtol,
                                   atol=rtol * np.abs(mine).max())
        if variant == _dispatch.variant:
            assert np.array_equal(theirs, mine)


def test_without_the_optimizer(tmp_path):
    net, X, y = trained_net()
    net.save(tmp_path / "m.npz", include_optimizer=False)
    loaded = nncore.load(tmp_path / "m.npz")
    assert loaded.optimizer is None
    assert np.array_equal(loaded.predict(X), net.predict(X))
    header, arrays = archive_parts((tmp_path / "m.npz").read_bytes())
    assert header["optimizer"] is None and sorted(arrays) == ["params"]
    loaded.fit(X, y, epochs=1, batch_size=8)     # a new Adam, as for any network
    assert isinstance(loaded.optimizer, nncore.Adam) and loaded.optimizer.step == 8


def test_untrained_network_round_trips(tmp_path):
    net, _X, _ = trained_net(epochs=0)
    net.save(str(tmp_path / "m.npz"))
    loaded = nncore.load(str(tmp_path / "m.npz"))
    assert_same_network(net, loaded)


def test_optimizer_reset_after_training_round_trips(tmp_path):
    net, X, y = trained_net()
    net.optimizer.reset()
    net.save(tmp_path / "m.npz")
    loaded = nncore.load(tmp_path / "m.npz")
    assert loaded.optimizer.step == 0
    assert all(not a.any() for a in loaded.optimizer.state_arrays())
    net.fit(X, y, epochs=1)
    loaded.fit(X, y, epochs=1)
    assert_same_network(net, loaded)


def test_file_objects_and_the_header(tmp_path):
    net, _X, _ = trained_net(optimizer=nncore.SGD(0.1, momentum=0.9))
    data = saved_bytes(net)
    assert data[:4] == b"PK\x03\x04"
    header, arrays = archive_parts(data)
    assert header["format"] == "nncore" and header["format_version"] == 1
    assert header["nncore_version"] == nncore.__version__
    assert header["layers"][0] == {"fan_in": 4, "fan_out": 6, "activation": "tanh",
                                   "dropout": 0.0}
    assert header["loss"] == {"name": "cross_entropy", "params": {}}
    assert header["optimizer"] == {"class": "SGD", "hyper": {
        "lr": 0.1, "momentum": 0.9, "nesterov": False, "weight_decay": 0.0},
        "step": 16, "n_arrays": 1}
    assert header["n_params"] == net.n_params == arrays["params"].size
    loaded = nncore.load(io.BytesIO(data))
    assert_same_network(net, loaded)
    with open(tmp_path / "m.npz", "wb") as f:     # an open file, written in place
        f.write(b"")
        net.save(f)
    with open(tmp_path / "m.npz", "rb") as f:
        assert_same_network(net, nncore.load(f))


def test_metadata(tmp_path):
    net, _X, _ = trained_net()
    assert net.metadata == {}
    net.metadata["classes"] = ["a", "b", "c"]
    net.save(tmp_path / "a.npz")
    assert nncore.load(tmp_path / "a.npz").metadata == {"classes": ["a", "b", "c"]}
    net.save(tmp_path / "b.npz", metadata={"scaler": {"mean": [0.5, 1.0]}})
    assert nncore.load(tmp_path / "b.npz").metadata == {"scaler": {"mean": [0.5, 1.0]}}
    with pytest.raises(TypeError, match="metadata must hold JSON"):
        net.save(tmp_path / "c.npz", metadata={"x": np.zeros(2)})
    with pytest.raises(TypeError, match="metadata must hold JSON"):
        net.save(tmp_path / "c.npz", metadata={"x": float("nan")})
    with pytest.raises(TypeError, match="metadata must be a dict"):
        net.save(tmp_path / "c.npz", metadata=[1])
    with pytest.raises(TypeError, match="include_optimizer"):
        net.save(tmp_path / "c.npz", include_optimizer="yes")
    assert not (tmp_path / "c.npz").exists()


# ------------------------------------------------------------ pickle and copy
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_pickled_network_is_the_same_and_resumes_exactly(how, dtype):
    net, X, y = trained_net(dtype=dtype, optimizer=nncore.RMSprop(0.01, momentum=0.5))
    net.metadata = {"k": 1}
    if how == "pickle":
        copied = pickle.loads(pickle.dumps(net))
    else:
        copied = copy.deepcopy(net)
    assert_same_network(net, copied)
    assert copied.metadata == {"k": 1} and copied.metadata is not net.metadata
    assert copied.history.loss == net.history.loss
    assert copied._lock is not net._lock and copied._workspaces == {}
    assert copied.optimizer is not net.optimizer
    for p, q in zip(copied.params, net.params):
        assert not np.shares_memory(p, q)
    net.fit(X, y, epochs=2, batch_size=8)
    copied.fit(X, y, epochs=2, batch_size=8)
    assert_same_network(net, copied)


def test_pickle_keeps_shared_optimizer_identity():
    net, X, y = trained_net()
    net2, opt2 = pickle.loads(pickle.dumps((net, net.optimizer)))
    assert net2.optimizer is opt2
    net3, opt3 = copy.deepcopy((net, net.optimizer))
    assert net3.optimizer is opt3
    net.fit(X, y, epochs=1, batch_size=8)
    net2.fit(X, y, epochs=1, batch_size=8, optimizer=opt2)
    assert_same_network(net, net2)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_pickled_optimizer_continues_exactly(name):
    net, X, y = trained_net(optimizer=OPTIMIZERS[name]())
    state = net.state()
    opt = pickle.loads(pickle.dumps(net.optimizer))
    assert repr(opt) == repr(net.optimizer) and opt.step == net.optimizer.step
    for a, b in zip(opt.state_arrays(), net.optimizer.state_arrays()):
        assert np.array_equal(a, b)
    copied = copy.deepcopy(net.optimizer)
    net.fit(X, y, epochs=1, batch_size=8)
    # An unbound copy binds to the next network it trains, here a fresh one put
    # back in the same state.
    other, _, _ = trained_net(epochs=0)
    other.restore(dict(state, optimizer=None))
    other.fit(X, y, epochs=1, batch_size=8, optimizer=opt)
    assert_same_network(net, other)
    assert copied.step == opt.step - 8


def test_pickle_of_an_untrained_network_and_optimizer():
    net, _X, _y = trained_net(epochs=0)
    copied = pickle.loads(pickle.dumps(net))
    assert_same_network(net, copied)
    assert copied.optimizer is None and copied.history is None
    opt = pickle.loads(pickle.dumps(nncore.Adam(0.02)))
    assert repr(opt) == "Adam(lr=0.02, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.0)"


# ------------------------------------------------------------------ atomic write
def _listing(folder):
    return sorted(os.listdir(folder))


@pytest.mark.parametrize("failure", ["write", "fsync", "interrupt", "replace"])
def test_a_failed_write_leaves_the_old_file_intact(failure, tmp_path, monkeypatch):
    good, _X, _ = trained_net(seed=1)
    path = tmp_path / "model.npz"
    good.save(path)
    before = path.read_bytes()
    other, _, _ = trained_net(seed=2)

    def failing_savez(f, **members):
        f.write(b"PK\x03\x04 half a file")    # something reaches the disk first
        if failure == "interrupt":
            raise KeyboardInterrupt
        raise OSError(errno.ENOSPC, "No space left on device")

    def failing_fsync(fd):
        raise OSError(errno.EIO, "Input/output error")

    def failing_replace(src, dst):
        raise OSError(errno.EACCES, "Permission denied")

    if failure in ("write", "interrupt"):
        monkeypatch.setattr(nnio.np, "savez", failing_savez)
    elif failure == "fsync":
        monkeypatch.setattr(nnio.os, "fsync", failing_fsync)
    else:
        monkeypatch.setattr(nnio.os, "replace", failing_replace)
    with pytest.raises(KeyboardInterrupt if failure == "interrupt" else OSError):
        other.save(path)
    monkeypatch.undo()
    assert _listing(tmp_path) == ["model.npz"]       # no temporary file left behind
    assert path.read_bytes() == before
    assert_same_network(good, nncore.load(path))


def test_write_replaces_atomically_and_keeps_the_mode(tmp_path):
    first, _, _ = trained_net(seed=1)
    second, _, _ = trained_net(seed=2)
    path = tmp_path / "model.npz"
    first.save(path)
    second.save(path)
    assert_same_network(second, nncore.load(path))
    assert _listing(tmp_path) == ["model.npz"]
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


# -------------------------------------------------------------------- bad files
def _bad(data, match, tmp_path, name="bad.npz", **kwargs):
    """Loading ``data`` from a path and from a file object raises a ValueError that
    names the file and matches ``match``."""
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(ValueError, match=match) as info:
        nncore.load(path, **kwargs)
    assert f"cannot load {str(path)!r}: " in str(info.value)
    with pytest.raises(ValueError, match=match):
        nncore.load(io.BytesIO(data), **kwargs)
    return str(info.value)


@pytest.fixture(scope="module")
def good():
    net, _X, _ = trained_net(optimizer=nncore.Adam(0.01))
    return net, saved_bytes(net)


def test_truncated_file(good, tmp_path):
    data = good[1]
    for cut in (0, 3, 10, 100, len(data) // 2, len(data) - 22, len(data) - 1):
        _bad(data[:cut], "not a zip archive|damaged or truncated", tmp_path)


def test_not_a_zip(tmp_path):
    _bad(b"hello, I am a text file\n" * 10, "not a zip archive", tmp_path)
    # A lone .npy that claims 10^12 bytes: np.load would try to allocate them.
    _bad(_npy_header((10**6, 10**6), "|u1") + b"\0" * 100, "not a zip archive", tmp_path)


def test_foreign_zip(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("readme.txt", "not a model")
    _bad(buf.getvalue(), "no header in the archive", tmp_path)
    buf = io.BytesIO()
    np.savez(buf, weights=np.zeros(3))
    _bad(buf.getvalue(), "no header in the archive", tmp_path)


@pytest.mark.parametrize("raw, match", [
    (b"\xff\xfe not utf-8", "not UTF-8"),
    (b"{not json", "not JSON"),
    (b"[1, 2, 3]", "not an object"),
    (b'{"lr": NaN}', "NaN"),
    (b'{"format": "keras"}', r"not an nncore model file \(format 'keras'\)"),
    (b"[" * 100000 + b"]" * 100000, "nests too deeply|not JSON"),
], ids=["not-utf8", "not-json", "json-list", "nan", "other-format", "deep-nesting"])
def test_header_that_is_not_a_header(raw, match, good, tmp_path):
    _, arrays = archive_parts(good[1])
    _bad(make_archive(raw, arrays), match, tmp_path)


def test_newer_format_version(good, tmp_path):
    header, arrays = archive_parts(good[1])
    header["format_version"] = 2
    header["something_new"] = {"x": 1}
    message = _bad(make_archive(header, arrays), "format version 2", tmp_path)
    assert "upgrade nncore" in message


def _edited(good, edit):
    header, arrays = archive_parts(good[1])
    edit(header, arrays)
    return make_archive(header, arrays)


@pytest.mark.parametrize("edit, match", [
    (lambda h, a: h["layers"][0].update(activation="swish"),
     "unknown activation 'swish'"),
    (lambda h, a: h["loss"].update(name="hinge"), "unknown loss 'hinge'"),
    (lambda h, a: h["optimizer"].update({"class": "Lion"}), "unknown optimizer 'Lion'"),
    (lambda h, a: h["optimizer"].update({"class": "os.system"}), "unknown optimizer"),
    (lambda h, a: h["optimizer"]["hyper"].update(lr=-1.0), "lr must be"),
    (lambda h, a: h["optimizer"]["hyper"].update(callback="x"), "no hyperparameters"),
    (lambda h, a: h["optimizer"].update(step=-1), "step must be >= 0"),
    (lambda h, a: h["optimizer"].update(n_arrays=1), "keeps 2 state arrays"),
    (lambda h, a: h.update(dtype="float16"), "dtype must be"),
    (lambda h, a: h.update(dtype="float64"), "dtype float32; expected float64"),
    (lambda h, a: h.update(n_params=10**12), "n_params=1000000000000"),
    (lambda h, a: h["layers"][0].update(fan_out=7), "do not chain"),
    (lambda h, a: h["layers"][-1].update(fan_out=3, fan_in=6) or h.update(
        loss={"name": "gaussian_nll", "params": {}}), "even output width"),
    (lambda h, a: h["layers"][0].update(fan_in=0), "fan_in must be >= 1"),
    (lambda h, a: h["layers"][0].update(fan_in="4"), "must be a JSON int"),
    (lambda h, a: h["layers"][0].update(fan_in=True), "must be a JSON int"),
    (lambda h, a: h.update(layers=[]), "lists 0 layers"),
    (lambda h, a: h["loss"].update(params={"delta": 1.0}), "takes no parameters"),
    (lambda h, a: h.update(seed=-3), "seed must be"),
    (lambda h, a: h["rng"].update(bit_generator="MT19937"), "must be 'PCG64'"),
    (lambda h, a: h["rng"]["state"].update(state=-1), "out of range"),
    (lambda h, a: h["rng"]["state"].update(inc=1 << 200), "out of range"),
    (lambda h, a: h.pop("metadata"), "no 'metadata' field"),
    (lambda h, a: h.update(metadata=[1]), "must be a JSON dict"),
    (lambda h, a: h.update(extra=1), r"unknown fields \['extra'\]"),
    (lambda h, a: a.update(params=a["params"][:-1]), r"has shape \(\d+,\)"),
    (lambda h, a: a.update(params=a["params"].reshape(1, -1)), "has shape"),
    (lambda h, a: a.update(optimizer_1=a["optimizer_1"][:5]), "has shape"),
    (lambda h, a: a.update(params=a["params"].astype(np.float64)), "expected float32"),
    (lambda h, a: a.update(params=a["params"].astype(np.int32)), "expected float32"),
    (lambda h, a: a.pop("optimizer_1"), r"missing \['optimizer_1.npy'\]"),
    (lambda h, a: a.update(stowaway=np.zeros(1)), r"unexpected \['stowaway.npy'\]"),
])
def test_header_and_arrays_that_disagree(edit, match, good, tmp_path):
    _bad(_edited(good, edit), match, tmp_path)


def test_big_endian_arrays_load(good, tmp_path):
    data = _edited(good, lambda h, a: a.update(
        {k: v.astype(v.dtype.newbyteorder(">")) for k, v in a.items()}))
    assert_same_network(good[0], nncore.load(io.BytesIO(data)))


def test_compressed_members_are_refused(good, tmp_path):
    header, arrays = archive_parts(good[1])
    _bad(make_archive(header, arrays, compressed=True), "compressed", tmp_path)


def _npy_header(shape, descr="<f4"):
    """The bytes of a .npy version 1.0 header for an array of ``shape``, without the
    data."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue()


@pytest.mark.parametrize("forged_zip_entry", [False, True])
def test_a_header_claiming_10_to_the_12_parameters_allocates_nothing(
        forged_zip_entry, good, tmp_path):
    """Layers of 10^6 x 10^6 and a params member whose .npy header declares 10^12
    floats (and, forged, its zip entry 4 * 10^12 bytes), in a file of a few
    kilobytes: refused from the sizes alone, without allocating (traced peak far
    below a megabyte)."""
    header, _arrays = archive_parts(good[1])
    header["layers"] = [{"fan_in": 10**6, "fan_out": 10**6 - 1, "activation": "relu",
                         "dropout": 0.0}, {"fan_in": 10**6 - 1, "fan_out": 3,
                                           "activation": "identity", "dropout": 0.0}]
    n = 10**6 * (10**6 - 1) + (10**6 - 1) + (10**6 - 1) * 3 + 3
    header["n_params"] = n
    header["optimizer"] = None
    raw = json.dumps(header).encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("header.npy", _npy_header((len(raw),), "|u1") + raw)
        with z.open("params.npy", "w", force_zip64=True) as m:
            m.write(_npy_header((n,)) + b"\0" * 100)
        if forged_zip_entry:    # the central directory, written on close, lies too
            info = z.getinfo("params.npy")
            info.file_size = info.compress_size = len(_npy_header((n,))) + 4 * n
    data = buf.getvalue()
    assert len(data) < 10_000
    tracemalloc.start()
    try:
        message = _bad(data, "member 'params'", tmp_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    if forged_zip_entry:
        assert f"declares {4 * n + 128} bytes, more than the file holds" in message
    else:
        assert f"its .npy header implies {4 * n + 128}" in message
    assert peak < 1 << 20, peak


def test_nan_in_the_weights(tmp_path):
    net, _X, _ = trained_net()
    net.params[0][1, 2] = np.nan
    net.params[1][0] = np.inf
    path = tmp_path / "nan.npz"
    net.save(path)
    message = _bad(path.read_bytes(), "2 NaN or infinite values", tmp_path)
    assert "allow_nonfinite=True" in message
    loaded = nncore.load(path, allow_nonfinite=True)
    assert np.isnan(loaded.params[0][1, 2]) and np.isinf(loaded.params[1][0])
    with pytest.raises(TypeError, match="allow_nonfinite"):
        nncore.load(path, allow_nonfinite=1)


def test_nan_in_the_optimizer_state(good, tmp_path):
    def poison(h, a):
        a["optimizer_1"] = a["optimizer_1"].copy()
        a["optimizer_1"][3] = np.nan
    _bad(_edited(good, poison), "optimizer state hold 1 NaN", tmp_path)


@pytest.mark.parametrize("member", ["header", "params", "optimizer_0"])
def test_an_object_array_is_never_unpickled(member, good, tmp_path):
    marker = tmp_path / "marker-was-written"
    evil = np.empty(3, dtype=object)
    evil[:] = [PicklePayload(str(marker))] * 3
    header, arrays = archive_parts(good[1])
    buf = io.BytesIO()
    members = {"header": np.frombuffer(json.dumps(header).encode(), np.uint8), **arrays,
               member: evil}
    np.savez(buf, allow_pickle=True, **members)
    data = buf.getvalue()
    assert not marker.exists()
    # The payload works: NumPy with allow_pickle=True would run it.
    with np.load(io.BytesIO(data), allow_pickle=True) as npz:
        npz[member]
    assert marker.exists()
    marker.unlink()
    message = _bad(data, "Python objects", tmp_path)
    assert member in message
    assert not marker.exists()


def test_missing_file_is_an_oserror(tmp_path):
    with pytest.raises(FileNotFoundError):
        nncore.load(tmp_path / "nope.npz")
