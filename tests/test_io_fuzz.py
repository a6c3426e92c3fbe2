"""Damaged and hostile model files, generated: whatever hypothesis does to a valid
file (bytes changed, cut short, header fields replaced by arbitrary JSON, arrays
replaced by arbitrary ones), ``nncore.load`` either loads a working network or raises
ValueError, never any other exception."""
import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nncore

from _helpers import archive_parts, make_archive, saved_bytes, trained_net

pytestmark = pytest.mark.slow

SETTINGS = settings(max_examples=200, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])


def _files():
    sgd, _, _ = trained_net(optimizer=nncore.SGD(0.1, momentum=0.9), dtype="float64")
    adam, _, _ = trained_net(loss="gaussian_nll", optimizer=nncore.Adam(0.01),
                             activations=("gelu",))
    return [saved_bytes(sgd), saved_bytes(adam)]


FILES = _files()
X = np.random.default_rng(0).normal(size=(5, 4))


def load_cleanly_or_refuse(data):
    try:
        net = nncore.load(io.BytesIO(data))
    except ValueError as exc:
        assert str(exc).startswith("cannot load <BytesIO>: "), exc
        return None
    out = net.predict(X)        # what loads, works
    assert out.shape == (5, net.n_outputs)
    return net


@SETTINGS
@given(which=st.sampled_from(range(len(FILES))), data=st.data())
def test_changed_bytes(which, data):
    raw = bytearray(FILES[which])
    for _ in range(data.draw(st.integers(1, 4), label="changes")):
        i = data.draw(st.integers(0, len(raw) - 1), label="offset")
        raw[i] = data.draw(st.integers(0, 255), label="byte")
    load_cleanly_or_refuse(bytes(raw))


@SETTINGS
@given(which=st.sampled_from(range(len(FILES))), data=st.data())
def test_truncated_or_extended(which, data):
    raw = FILES[which]
    cut = data.draw(st.integers(0, len(raw)), label="cut")
    tail = data.draw(st.binary(max_size=64), label="tail")
    result = load_cleanly_or_refuse(raw[:cut] + tail)
    if cut < len(raw) - 22:     # less than the whole archive (22: the end record)
        assert result is None


def _paths(obj, prefix=()):
    """Every path into a JSON value: the keys and indices to each node."""
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**130, 2**130)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([0, 1, 2, -1, 0.0, 0.5, 1e308, 2**31, 2**63, "", "relu", "Adam",
                       "float64", "PCG64", "nncore"])
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6),
                                                                inner, max_size=4),
    max_leaves=6)


@SETTINGS
@given(which=st.sampled_from(range(len(FILES))), data=st.data())
def test_header_fields_replaced(which, data):
    header, arrays = archive_parts(FILES[which])
    paths = sorted(_paths(header), key=repr)
    for _ in range(data.draw(st.integers(1, 3), label="changes")):
        path = data.draw(st.sampled_from(paths), label="path")
        value = data.draw(JSON, label="value")
        if not path:
            header = value
            continue
        node = header
        try:
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            pass        # an earlier change removed this path
    load_cleanly_or_refuse(make_archive(header, arrays))


ARRAYS = st.one_of(
    st.builds(np.zeros, st.integers(0, 300), st.sampled_from(
        [np.float32, np.float64, np.int64, np.uint8, np.complex64, np.bool_, ">f8",
         "<f4", "U3", "V8", [("a", "<f4")]])),
    st.builds(lambda n: np.full((n, 2), np.nan), st.integers(0, 100)),
    st.builds(lambda s: np.frombuffer(s.encode(), np.uint8), st.text(max_size=40)))


@SETTINGS
@given(which=st.sampled_from(range(len(FILES))), data=st.data())
def test_arrays_replaced(which, data):
    header, arrays = archive_parts(FILES[which])
    names = sorted(arrays) + ["header", "extra"]
    name = data.draw(st.sampled_from(names), label="member")
    value = data.draw(ARRAYS, label="array")
    if name == "header":
        raw = value.tobytes()
    else:
        raw = header
        arrays[name] = value
    load_cleanly_or_refuse(make_archive(raw, arrays))


def test_every_single_byte_flip_and_cut():
    """Exhaustive over one file: each byte inverted, and each prefix."""
    raw = FILES[0]
    loaded = 0
    for i in range(len(raw)):
        changed = bytearray(raw)
        changed[i] ^= 0xFF
        loaded += load_cleanly_or_refuse(bytes(changed)) is not None
    for cut in range(len(raw)):
        assert load_cleanly_or_refuse(raw[:cut]) is None
    # Only bytes no reader checks (zip timestamps, attributes) may change unnoticed:
    # every byte of the data is covered by a CRC.
    assert loaded < len(raw) // 4
