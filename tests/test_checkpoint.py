"""ModelCheckpoint in fit: the files on disk are the network as it was at the end of
the epochs they name, bit for bit, optimizer state included."""
import io
import math

import numpy as np
import pytest

import nncore
from nncore.callbacks import LambdaCallback, ModelCheckpoint

from _helpers import assert_same_network, assert_same_state, saved_bytes, state_of


def fit_with(callbacks, epochs=8, lr=0.05, seed=0, **kwargs):
    """Train a small classifier with validation data; return the network, its
    history and the saved bytes of the network after each epoch (taken by a
    callback that runs before ``callbacks``)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(96, 4))
    y = (X[:, 0] + 0.3 * rng.normal(size=96) > 0).astype(int) + (X[:, 1] > 1)
    net = nncore.Network([nncore.Dense(4, 8, "tanh"), nncore.Dense(8, 3)],
                         loss="cross_entropy", seed=seed)
    after = []
    record = LambdaCallback(on_epoch_end=lambda epoch, logs: after.append(saved_bytes(net)))
    history = net.fit(X[:64], y[:64], epochs=epochs, batch_size=16,
                      optimizer=nncore.Adam(lr), validation_data=(X[64:], y[64:]),
                      callbacks=[record, *callbacks], **kwargs)
    return net, history, [nncore.load(io.BytesIO(b)) for b in after]


def _names(folder):
    return sorted(p.name for p in folder.iterdir())


def _improvements(values, better):
    best, out = None, []
    for epoch, value in enumerate(values):
        if not math.isnan(value) and (best is None or better(value, best)):
            best = value
            out.append(epoch)
    return out


def test_save_best_only_keeps_the_best_epoch(tmp_path):
    path = tmp_path / "best.npz"
    callback = ModelCheckpoint(path)
    _, history, after = fit_with([callback], lr=0.3)
    val = history.val_loss
    best = int(np.argmin(val))
    assert best < len(val) - 1, val      # the lr makes validation worse at the end
    assert_same_network(after[best], nncore.load(path))
    assert callback.best == val[best] and callback.last_path == str(path)
    assert _names(tmp_path) == ["best.npz"]


def test_formatted_paths_name_each_improvement(tmp_path):
    callback = ModelCheckpoint(str(tmp_path / "m-{epoch:02d}-{val_loss:.3f}.npz"))
    _, history, after = fit_with([callback], lr=0.3)
    epochs = _improvements(history.val_loss, lambda a, b: a < b)
    names = [f"m-{e + 1:02d}-{history.val_loss[e]:.3f}.npz" for e in epochs]
    assert _names(tmp_path) == sorted(names)
    for e, name in zip(epochs, names):
        assert_same_network(after[e], nncore.load(tmp_path / name))


def test_every_epoch(tmp_path):
    callback = ModelCheckpoint(str(tmp_path / "m-{epoch}.npz"), save_best_only=False)
    fit_with([callback], epochs=3)
    assert _names(tmp_path) == ["m-1.npz", "m-2.npz", "m-3.npz"]


def test_a_checkpoint_resumes_exactly(tmp_path):
    """Training 4 epochs, then 4 more from the epoch-4 checkpoint in a new network,
    equals training 8 epochs at once (validation does not touch the generator)."""
    callback = ModelCheckpoint(str(tmp_path / "m-{epoch}.npz"), save_best_only=False)
    net, _, _ = fit_with([callback], epochs=8)
    resumed = nncore.load(tmp_path / "m-4.npz")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(96, 4))
    y = (X[:, 0] + 0.3 * rng.normal(size=96) > 0).astype(int) + (X[:, 1] > 1)
    resumed.fit(X[:64], y[:64], epochs=4, batch_size=16)
    assert_same_network(net, resumed)


def test_accuracy_is_maximised_and_kept_across_fit_calls(tmp_path):
    callback = ModelCheckpoint(str(tmp_path / "m-{epoch}.npz"), monitor="val_accuracy")
    _, history, _ = fit_with([callback])
    values = history.history["val_accuracy"]
    assert callback.best == max(values)
    epochs = _improvements(values, lambda a, b: a > b)
    assert _names(tmp_path) == sorted(f"m-{e + 1}.npz" for e in epochs)
    for p in tmp_path.iterdir():
        p.unlink()
    fit_with([callback], epochs=2, lr=1e-6)      # no epoch beats the best: no file
    assert _names(tmp_path) == []


def test_nan_never_improves(tmp_path):
    nan_first = LambdaCallback(on_epoch_end=lambda epoch, logs: logs.update(
        score=math.nan if epoch % 2 == 0 else -epoch))
    callback = ModelCheckpoint(str(tmp_path / "m-{epoch}.npz"), monitor="score")
    fit_with([nan_first, callback], epochs=5)
    assert _names(tmp_path) == ["m-2.npz", "m-4.npz"]


def test_bad_arguments_and_logs(tmp_path):
    with pytest.raises(ValueError, match="mode must be"):
        ModelCheckpoint("m.npz", mode="best")
    with pytest.raises(TypeError, match="monitor must be"):
        ModelCheckpoint("m.npz", monitor=None)
    with pytest.raises(TypeError, match="save_best_only"):
        ModelCheckpoint("m.npz", save_best_only="yes")
    with pytest.raises(TypeError, match="path must be a str or path-like"):
        ModelCheckpoint(3)
    # Before training: fit does not log what the checkpoint needs.
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 4)), rng.integers(0, 3, 20)
    net = nncore.Network([nncore.Dense(4, 3)], loss="cross_entropy", seed=0)
    before = state_of(net)
    with pytest.raises(ValueError, match="monitors 'val_loss', which this fit call "
                                         "does not log"):
        net.fit(X, y, callbacks=[ModelCheckpoint(str(tmp_path / "m.npz"))])
    with pytest.raises(ValueError, match=r"names \['val_loss'\], which this fit call"):
        net.fit(X, y, callbacks=[ModelCheckpoint(str(tmp_path / "m-{val_loss}.npz"),
                                                 monitor="loss")])
    assert_same_state(before, state_of(net))
    # After an epoch: a field no one logs.
    with pytest.raises(ValueError, match="format field the epoch cannot fill"):
        net.fit(X, y, callbacks=[ModelCheckpoint(str(tmp_path / "m-{step}.npz"),
                                                 save_best_only=False)])
    assert _names(tmp_path) == []
