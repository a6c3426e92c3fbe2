"""ModelCheckpoint, driven through its hooks the way fit's epoch loop calls them."""
import io
import math

import numpy as np
import pytest

import nncore
from nncore._checkpoint import ModelCheckpoint

from _helpers import assert_same_network

VAL_LOSSES = [0.9, 0.7, 0.8, 0.5, 0.6]


def drive(callback, val_losses=VAL_LOSSES, key="val_loss"):
    """Train one epoch per value and report it as the epoch's ``key``; return copies
    of the network after each epoch."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(64, 4)), rng.integers(0, 3, 64)
    net = nncore.Network([nncore.Dense(4, 8, "tanh"), nncore.Dense(8, 3)],
                         loss="cross_entropy", seed=0)
    callback.network = net
    callback.on_train_begin({})
    after = []
    for epoch, value in enumerate(val_losses):
        callback.on_epoch_begin(epoch, {})
        history = net.fit(X, y, epochs=1, batch_size=16)
        callback.on_epoch_end(epoch, {"loss": history.loss[-1], key: value})
        after.append(nncore.load(_snapshot(net)))
    callback.on_train_end({})
    return after


def _snapshot(net):
    buf = io.BytesIO()
    net.save(buf)
    buf.seek(0)
    return buf


def test_save_best_only_keeps_the_best_epoch(tmp_path):
    path = tmp_path / "best.npz"
    callback = ModelCheckpoint(str(path))
    after = drive(callback)
    best = int(np.argmin(VAL_LOSSES))
    assert_same_network(after[best], nncore.load(path))      # optimizer state included
    assert callback.best == 0.5 and callback.last_path == str(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.npz"]


def test_every_epoch_with_formatted_paths(tmp_path):
    callback = ModelCheckpoint(str(tmp_path / "m-{epoch:02d}-{val_loss:.1f}.npz"),
                               save_best_only=False)
    after = drive(callback)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [f"m-{e + 1:02d}-{v:.1f}.npz" for e, v in enumerate(VAL_LOSSES)]
    for e, name in enumerate(names):
        assert_same_network(after[e], nncore.load(tmp_path / name))


def test_formatted_best_only_writes_each_improvement(tmp_path):
    drive(ModelCheckpoint(str(tmp_path / "m-{epoch}.npz")))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m-1.npz", "m-2.npz", "m-4.npz"]


def test_accuracy_is_maximised(tmp_path):
    callback = ModelCheckpoint(str(tmp_path / "m-{epoch}.npz"), monitor="val_accuracy")
    drive(callback, [0.5, 0.7, 0.6, 0.9], key="val_accuracy")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m-1.npz", "m-2.npz", "m-4.npz"]
    callback = ModelCheckpoint(str(tmp_path / "min-{epoch}.npz"), monitor="val_accuracy",
                               mode="min")
    drive(callback, [0.5, 0.7, 0.4], key="val_accuracy")
    assert callback.best == 0.4


def test_nan_never_improves(tmp_path):
    callback = ModelCheckpoint(str(tmp_path / "m-{epoch}.npz"))
    drive(callback, [math.nan, 0.5, math.nan])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m-2.npz"]


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="mode must be one of"):
        ModelCheckpoint("m.npz", mode="best")
    with pytest.raises(TypeError, match="monitor must be a string"):
        ModelCheckpoint("m.npz", monitor=None)
    with pytest.raises(TypeError, match="save_best_only"):
        ModelCheckpoint("m.npz", save_best_only="yes")
    with pytest.raises(ValueError, match="monitors 'val_loss', which the epoch's logs do "
                                         r"not hold \(they hold \['loss', 'val_acc'\]\)"):
        drive(ModelCheckpoint(str(tmp_path / "m.npz")), [0.5], key="val_acc")
    with pytest.raises(ValueError, match="format field the epoch cannot fill"):
        drive(ModelCheckpoint(str(tmp_path / "m-{step}.npz"), save_best_only=False),
              [0.5])
    assert list(tmp_path.iterdir()) == []
