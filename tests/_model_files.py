"""Helpers for the model-file tests (test_io, test_io_fuzz, test_cli_model): trained
networks to save, and hand-made archives for what the writer never produces."""
import io
import json

import numpy as np
from conftest import make_data, output_width

import nncore

# A layer per activation, so that one network exercises all eight.
ALL_ACTIVATIONS = tuple(nncore.ACTIVATIONS)


def trained_net(loss="cross_entropy", dtype="float32", optimizer=None, epochs=2,
                activations=("tanh", "relu"), seed=0, n=64):
    """A small network trained ``epochs`` epochs with shuffling, and its data."""
    k = 3
    sizes = [4] + [6] * len(activations) + [output_width(loss, k)]
    layers = [nncore.Dense(a, b, act)
              for a, b, act in zip(sizes, sizes[1:], list(activations) + ["identity"])]
    net = nncore.Network(layers, loss=loss, dtype=dtype, seed=seed)
    X, y = make_data(loss, n, 4, k, np.random.default_rng(seed + 1))
    if epochs:
        net.fit(X, y, epochs=epochs, batch_size=8,
                optimizer=optimizer if optimizer is not None else nncore.Adam(0.01))
    return net, X, y


def saved_bytes(net, **kwargs):
    buf = io.BytesIO()
    net.save(buf, **kwargs)
    return buf.getvalue()


def archive_parts(data):
    """(header dict, {name: array}) of a saved file's bytes."""
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    header = json.loads(arrays.pop("header").tobytes().decode("utf-8"))
    return header, arrays


def make_archive(header, arrays, compressed=False):
    """An .npz archive (bytes) of ``header`` (a dict, or raw bytes) and ``arrays``,
    written by NumPy itself, so that its CRCs and sizes are right."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode("utf-8")
    buf = io.BytesIO()
    save = np.savez_compressed if compressed else np.savez
    save(buf, header=np.frombuffer(raw, dtype=np.uint8), **arrays)
    return buf.getvalue()


def same_network(a, b):
    """Bit-for-bit equality of everything a saved file holds."""
    assert repr(a) == repr(b)
    assert a.dtype == b.dtype
    for p, q in zip(a.params, b.params):
        assert p.dtype == q.dtype and np.array_equal(p, q)
    assert a._rng.bit_generator.state == b._rng.bit_generator.state
    if a.optimizer is None:
        assert b.optimizer is None
        return
    assert repr(a.optimizer) == repr(b.optimizer)
    assert a.optimizer.step == b.optimizer.step
    sa, sb = a.optimizer.state_arrays(), b.optimizer.state_arrays()
    assert len(sa) == len(sb)
    for p, q in zip(sa, sb):
        assert p.dtype == q.dtype and np.array_equal(p, q)
