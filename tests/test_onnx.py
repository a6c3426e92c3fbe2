"""ONNX export: the model passes onnx's checker, and ONNX Runtime computes what
``predict`` computes, within 1e-5 (float32) and 1e-12 (float64) relative, for every
activation and loss."""
import os
import sys

import numpy as np
import pytest

import nncore

from _helpers import LOSS_CASES, loss_name, make_data, output_width

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

RTOL = {"float32": 1e-5, "float64": 1e-12}
DTYPES = ["float32", "float64"]


def run(model, X):
    session = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    return session.run(["Y"], {"X": X})[0]


def unit_network(activation, dtype, k=1, loss="mse"):
    """k inputs, k outputs, W = I and b = 0: predict gives f(X), or the loss's
    transform of X, with no rounding from the product."""
    net = nncore.Network([nncore.Dense(k, k, activation)], loss=loss, dtype=dtype)
    net.params[0][...] = np.eye(k)
    net.params[1][...] = 0
    return net


# A wide grid: both signs, +-100, and magnitudes from 1e-40 (subnormal in float32)
# to 300, which covers every branch and cancellation of the formulas.
GRID = np.concatenate([np.linspace(-100, 100, 20001), -np.logspace(-40, 2.5, 2000),
                       np.logspace(-40, 2.5, 2000), [0.0]])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", list(nncore.ACTIVATIONS))
def test_each_activation_value_by_value(activation, dtype):
    """Elementwise relative error below RTOL over GRID. Allowed beyond it: outputs
    in the subnormal range, which ONNX Runtime flushes to zero; and for gelu an
    absolute eps |z|, because the kernels compute it as 0.5 z (1 + tanh u), which
    cancels for z << 0, where the export's z sigmoid(2u) does not."""
    net = unit_network(activation, dtype)
    X = GRID.astype(dtype)[:, None]
    got, want = run(net.to_onnx(), X), net.predict(X)
    finfo = np.finfo(dtype)
    allowed = RTOL[dtype] * np.abs(want) + finfo.tiny
    if activation == "gelu":
        allowed += finfo.eps * np.abs(X)
    bad = ~(np.abs(got - want) <= allowed)
    assert not bad.any(), (X[bad][:5], got[bad][:5], want[bad][:5])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss", list(nncore.LOSSES))
def test_each_output_transform_value_by_value(loss, dtype):
    """The transform alone, on outputs of scale 30 (probabilities down to e^-100,
    variances up to overflow): elementwise relative error below RTOL."""
    k = 4
    net = unit_network("identity", dtype, k, loss)
    X = (np.random.default_rng(0).normal(size=(5000, k)) * 30).astype(dtype)
    got, want = run(net.to_onnx(), X), net.predict(X)
    assert got.dtype == want.dtype and got.shape == want.shape
    with np.errstate(invalid="ignore"):      # inf - inf where exp overflows
        bad = ~(np.abs(got - want) <= RTOL[dtype] * np.abs(want) + np.finfo(dtype).tiny)
    bad &= ~(np.isinf(got) & (got == want))
    assert not bad.any(), (got[bad][:5], want[bad][:5])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", LOSS_CASES)
@pytest.mark.parametrize("activation", list(nncore.ACTIVATIONS))
def test_trained_network_matches_predict(activation, case, dtype):
    """A trained 3-layer network: within RTOL of predict relative to the output's
    scale (its largest magnitude): the last product sums terms of that scale in
    another order than the kernels, so outputs near zero carry their rounding."""
    loss = loss_name(case)
    rng = np.random.default_rng(1)
    X, y = make_data(case, 200, 5, 3, rng)
    net = nncore.Network([nncore.Dense(5, 16, activation),
                          nncore.Dense(16, 16, activation),
                          nncore.Dense(16, output_width(case, 3))],
                         loss=loss, dtype=dtype, seed=2)
    net.fit(X, y, epochs=3, batch_size=16, optimizer=nncore.Adam(0.01))
    X = X.astype(dtype)
    got, want = run(net.to_onnx(), X), net.predict(X)
    np.testing.assert_allclose(got, want, rtol=RTOL[dtype],
                               atol=RTOL[dtype] * np.abs(want).max())


@pytest.mark.parametrize("dtype", DTYPES)
def test_model_structure(dtype):
    net = nncore.Network([nncore.Dense(3, 8, "relu"), nncore.Dense(8, 2)],
                         loss="cross_entropy", dtype=dtype, seed=0)
    model = net.to_onnx()
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version == nncore.onnx.OPSET
    elem = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    (inp,), (out,) = model.graph.input, model.graph.output
    assert inp.name == "X" and out.name == "Y"
    for value, width in ((inp, 3), (out, 2)):
        assert value.type.tensor_type.elem_type == elem
        batch, features = value.type.tensor_type.shape.dim
        assert batch.dim_param == "batch" and features.dim_value == width
    assert [n.op_type for n in model.graph.node].count("Gemm") == 2
    for n in (1, 7, 3000):     # the batch dimension is dynamic
        X = np.random.default_rng(n).normal(size=(n, 3)).astype(dtype)
        np.testing.assert_allclose(run(model, X), net.predict(X), rtol=RTOL[dtype])


def test_writes_the_file(tmp_path):
    net = nncore.Network([nncore.Dense(3, 4, "elu"), nncore.Dense(4, 2)], seed=0)
    path = tmp_path / "model.onnx"
    returned = net.to_onnx(path)
    assert os.listdir(tmp_path) == ["model.onnx"]
    assert onnx.load(str(path)).SerializeToString() == returned.SerializeToString()
    X = np.ones((2, 3), np.float32)
    np.testing.assert_allclose(run(onnx.load(str(path)), X), net.predict(X), rtol=1e-5)


def test_what_cannot_be_exported_is_a_clear_error(monkeypatch):
    net = nncore.Network([nncore.Dense(3, 4, "tanh"), nncore.Dense(4, 2)], seed=0)
    monkeypatch.delitem(nncore.onnx.OUTPUT_TRANSFORMS, "mse")
    with pytest.raises(ValueError, match="cannot export loss 'mse' to ONNX"):
        net.to_onnx()
    monkeypatch.undo()
    monkeypatch.delitem(nncore.onnx.ACTIVATIONS, "tanh")
    with pytest.raises(ValueError, match=r"layers\[0\]'s activation 'tanh'"):
        net.to_onnx()
    monkeypatch.undo()
    monkeypatch.setattr(nncore.onnx, "_MAX_WEIGHT_BYTES", 10)
    with pytest.raises(ValueError, match="beyond the 2 GiB"):
        net.to_onnx()


def test_every_loss_and_activation_has_a_graph():
    assert set(nncore.LOSSES) <= set(nncore.onnx.OUTPUT_TRANSFORMS)
    assert set(nncore.ACTIVATIONS) == set(nncore.onnx.ACTIVATIONS)


def test_missing_onnx_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    net = nncore.Network([nncore.Dense(1, 1)])
    with pytest.raises(ImportError, match=r'pip install "nncore\[onnx\]"'):
        net.to_onnx()
