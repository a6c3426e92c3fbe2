"""Saving and loading networks: one ``.npz`` archive, data only, versioned, written
atomically.

File format (format version 1)
------------------------------
A zip archive as :func:`numpy.savez` writes it (members stored, not compressed), of
``.npy`` members:

``header.npy``
    uint8 array (n_bytes,): a UTF-8 JSON object::

        {"format": "nncore", "format_version": 1, "nncore_version": "0.1.0",
         "dtype": "float32",
         "layers": [{"fan_in": 4, "fan_out": 16, "activation": "relu",
                     "dropout": 0.0}, ...],
         "loss": {"name": "cross_entropy", "params": {}},
         "n_params": 114,
         "seed": 0,
         "rng": {"bit_generator": "PCG64", "state": {"state": ..., "inc": ...},
                 "has_uint32": 0, "uinteger": 0},
         "optimizer": null | {"class": "Adam", "hyper": {"lr": 0.001, ...},
                              "step": 50, "n_arrays": 2},
         "metadata": {...}}

    ``rng`` is the shuffling generator's ``bit_generator.state``; ``hyper`` holds the
    optimizer's constructor arguments; ``metadata`` is free JSON for the caller
    (estimators' class labels, feature names, a scaler).
``params.npy``
    (n_params,) of ``dtype``: the flat parameters, layer by layer ``W`` (fan_in x
    fan_out, row-major) then ``b``.
``optimizer_0.npy``, ``optimizer_1.npy``, ... (``n_arrays`` of them)
    (n_params,) of ``dtype``: the optimizer's state arrays, as
    :meth:`nncore.Optimizer.state` orders them.

Safety
------
Loading never runs code from the file and allocates only what the file really holds:
it checks the zip signature before NumPy sees the file, opens the archive with
``np.load(allow_pickle=False)``, reads the JSON header (at most
:data:`HEADER_MAX_BYTES`) and checks every field; then, for each array, its zip
directory entry (stored, its declared size inside the file) and its ``.npy`` header
(dtype neither object nor anything but the header's dtype, shape as the header's
architecture implies) before reading it. Any failure is a ``ValueError`` naming the
file and what is wrong.
"""
from __future__ import annotations

import contextlib
import inspect
import json
import os
import secrets
import struct
import zipfile
import zlib
from typing import IO, TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .network import Network

FORMAT_NAME = "nncore"
# Bumped when a reader of the previous version could not read the new files.
FORMAT_VERSION = 1
# The JSON header holds the architecture and hyperparameters (and the caller's
# metadata): kilobytes. The bound keeps a hostile header from costing memory or time.
HEADER_MAX_BYTES = 1 << 24
MAX_LAYERS = 10_000
# No optimizer keeps more state arrays than this; a header that says more is damaged.
MAX_OPTIMIZER_ARRAYS = 8

_ZIP_MAGIC = b"PK\x03\x04"
_HEADER_KEYS = ("format", "format_version", "nncore_version", "dtype", "layers",
                "loss", "n_params", "seed", "rng", "optimizer", "metadata")
_RNG_BOUNDS = {"state": 1 << 128, "inc": 1 << 128}


class _Invalid(ValueError):
    """What the checks below find wrong in a file, in their own words. Any other
    error that reading raises is the zip or .npy reader's, on a damaged archive."""

# What a damaged or hostile archive can make the zip and .npy readers raise; each
# becomes a ValueError naming the file. (OSError: a corrupt offset makes zipfile
# seek before the start of the file.)
_READ_ERRORS = (ValueError, TypeError, KeyError, OSError, EOFError, OverflowError,
                RecursionError, zipfile.BadZipFile, zipfile.LargeZipFile, struct.error,
                zlib.error, NotImplementedError)


# ---------------------------------------------------------------------- saving
def save(network: Network, path: str | os.PathLike | IO[bytes],
         include_optimizer: bool = True, metadata: dict[str, Any] | None = None) -> None:
    """Write ``network`` to ``path`` (see :meth:`nncore.Network.save`)."""
    header, arrays = encode(network, include_optimizer, metadata)
    text = json.dumps(header, allow_nan=False, separators=(",", ":"))
    members = {"header": np.frombuffer(text.encode("utf-8"), dtype=np.uint8), **arrays}
    if hasattr(path, "write"):
        np.savez(path, allow_pickle=False, **members)
        return
    atomic_write(path, lambda f: np.savez(f, allow_pickle=False, **members))


def encode(network, include_optimizer=True, metadata=None):
    """The header (a JSON-ready dict) and the arrays ``{"params": ..., "optimizer_0":
    ...}`` that describe ``network``; copies, so the network may train on."""
    from . import __version__
    from .losses import Loss

    include_optimizer = _check_flag(include_optimizer, "include_optimizer")
    metadata = network.metadata if metadata is None else metadata
    if not isinstance(metadata, dict):
        raise TypeError(f"metadata must be a dict; got {type(metadata).__name__}")
    try:
        metadata = json.loads(json.dumps(metadata, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise TypeError("metadata must hold JSON data only (dicts with string keys, "
                        f"lists, strings, finite numbers, booleans, None): {exc}"
                        ) from None
    state = network.state(include_optimizer=include_optimizer)
    opt = network.optimizer if include_optimizer else None
    header = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "nncore_version": __version__,
        "dtype": network.dtype.name,
        "layers": [{"fan_in": layer.fan_in, "fan_out": layer.fan_out,
                    "activation": layer.activation,
                    "dropout": float(getattr(layer, "dropout", 0.0))}
                   for layer in network.layers],
        # a loss given as an object keeps its parameters; one given by name, none
        "loss": {"name": network.loss_name,
                 "params": (network._loss_spec._params()
                            if isinstance(network._loss_spec, Loss) else {})},
        "n_params": network.n_params,
        "seed": network.seed,
        "rng": state["rng"],
        "optimizer": None,
        "metadata": metadata,
    }
    arrays = {"params": state["params"]}
    if opt is not None:
        header["optimizer"] = {"class": type(opt).__name__, "hyper": hyperparameters(opt),
                               "step": int(state["optimizer"]["step"]),
                               "n_arrays": len(state["optimizer"]["arrays"])}
        for i, a in enumerate(state["optimizer"]["arrays"]):
            arrays[f"optimizer_{i}"] = a
    return header, arrays


def hyperparameters(optimizer):
    """The optimizer's constructor arguments as JSON values: from its ``_hyper()``
    when it has one, else from the attributes named like its constructor's
    parameters (so that a new optimizer needs no change here)."""
    try:
        hyper = optimizer._hyper()
    except (AttributeError, NotImplementedError):
        hyper = {name: getattr(optimizer, name)
                 for name in _constructor_parameters(type(optimizer))
                 if hasattr(optimizer, name)}
    return json.loads(json.dumps(hyper, default=_json_scalar))


def _json_scalar(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def atomic_write(path, write):
    """Call ``write(f)`` on a new file in ``path``'s folder, flush it to disk, then
    rename it onto ``path``: readers see the old file or the whole new one, never a
    part. On any failure (including KeyboardInterrupt) the temporary file is removed
    and ``path`` is untouched."""
    path = os.fsdecode(os.fspath(path))
    folder, base = os.path.split(os.path.abspath(path))
    # os.open (not tempfile.mkstemp) so that the umask sets the final file's mode,
    # as for any other file the user creates; O_EXCL makes the name ours.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = os.path.join(folder, f".{base}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(tmp, flags, 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_folder(folder)


def _fsync_folder(folder):
    """Make the rename itself durable (POSIX); best effort where folders cannot be
    opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---------------------------------------------------------------------- loading
def load(path: str | os.PathLike | IO[bytes], allow_nonfinite: bool = False) -> Network:
    """Read a network written by :meth:`nncore.Network.save`.

    Parameters
    ----------
    path : str, os.PathLike or binary file object
        The file. A file object is read from its current position.
    allow_nonfinite : bool, default False
        Accept NaN or infinite values in the parameters and optimizer state.

    Returns
    -------
    Network
        With the saved parameters, shuffling generator, ``metadata`` and (when
        saved) optimizer, bound to it as ``network.optimizer``: a ``fit`` call
        without ``optimizer=`` continues exactly where the saved network stopped.

    Raises
    ------
    ValueError
        The file is not an nncore model, is damaged or truncated, comes from a newer
        format version, or disagrees with itself (sizes, shapes, dtypes, names of
        activations, losses or optimizers, non-finite values). The message names the
        file. Nothing in the file is ever executed.
    OSError
        The file cannot be opened.
    """
    return read(path, allow_nonfinite)[1]


def read(path: str | os.PathLike | IO[bytes],
         allow_nonfinite: bool = False) -> tuple[dict[str, Any], Network]:
    """``(header, network)`` from a model file; the checks of :func:`load`."""
    allow_nonfinite = _check_flag(allow_nonfinite, "allow_nonfinite")
    if hasattr(path, "read"):
        source = _source_name(path)
        return _read_file(path, source, allow_nonfinite)
    source = repr(os.fsdecode(os.fspath(path)))
    with open(path, "rb") as f:
        return _read_file(f, source, allow_nonfinite)


def _source_name(f):
    name = getattr(f, "name", None)
    return repr(name) if isinstance(name, (str, bytes)) else f"<{type(f).__name__}>"


def _read_file(f, source, allow_nonfinite):
    try:
        header, spec, arrays = _read_archive(f)
        network = build(spec, arrays, allow_nonfinite)
    except _READ_ERRORS as exc:
        # One line: the command line prints it as its whole error report.
        message = " ".join(_describe(exc).split())
        raise ValueError(f"cannot load {source}: {message}") from None
    return header, network


def _describe(exc):
    if isinstance(exc, _Invalid):
        return str(exc)
    if isinstance(exc, RecursionError):
        return "the header nests too deeply"
    return f"damaged or truncated archive ({type(exc).__name__}: {exc})"


def _read_archive(f):
    """(header dict, checked spec, arrays) from an open binary file."""
    try:
        seekable = f.seekable()
    except AttributeError:
        seekable = False
    if not seekable:
        import io as _io
        f = _io.BytesIO(f.read())
    start = f.tell()
    end = f.seek(0, os.SEEK_END)
    f.seek(start)
    if f.read(len(_ZIP_MAGIC)) != _ZIP_MAGIC:
        raise _Invalid("not an nncore model file (not a zip archive)")
    f.seek(start)
    npz = np.load(f, allow_pickle=False)
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise _Invalid("not an nncore model file (not an .npz archive)")
    with npz:
        names = {info.filename for info in npz.zip.infolist()}
        if "header.npy" not in names:
            raise _Invalid("not an nncore model file (no header in the archive; "
                             f"its members: {sorted(names)[:10]})")
        _check_member(npz, "header", np.dtype(np.uint8), None, end)
        header = _parse_header(_read_member(npz, "header"))
        spec = check_header(header)
        expected = {"params": spec["n_params"]}
        for i in range(spec["optimizer"]["n_arrays"] if spec["optimizer"] else 0):
            expected[f"optimizer_{i}"] = spec["n_params"]
        wanted = {f"{name}.npy" for name in expected} | {"header.npy"}
        if names != wanted:
            extra, missing = sorted(names - wanted), sorted(wanted - names)
            raise _Invalid(f"the archive's members do not match its header: "
                             f"missing {missing[:10]}, unexpected {extra[:10]}")
        # Every size checked for every member before any array is read.
        for name, n in expected.items():
            _check_member(npz, name, spec["dtype"], n, end)
        arrays = {name: _read_member(npz, name) for name in expected}
    return header, spec, arrays


def _check_member(npz, name, dtype, n, end):
    """Check member ``name``'s zip entry and .npy header against dtype and a length
    of ``n`` (None: any length up to HEADER_MAX_BYTES), reading nothing else."""
    info = npz.zip.getinfo(f"{name}.npy")
    if info.flag_bits & 0x1:
        raise _Invalid(f"member {name!r} is encrypted; nncore files are not")
    if info.compress_type != zipfile.ZIP_STORED or info.compress_size != info.file_size:
        raise _Invalid(f"member {name!r} is compressed; nncore writes them stored")
    if info.header_offset + info.file_size > end:
        raise _Invalid(f"member {name!r} declares {info.file_size} bytes, more than "
                         "the file holds (truncated or damaged)")
    with npz.zip.open(info) as m:
        version = np.lib.format.read_magic(m)
        if version == (1, 0):
            shape, _, found = np.lib.format.read_array_header_1_0(m)
        elif version in ((2, 0), (3, 0)):
            shape, _, found = np.lib.format.read_array_header_2_0(m)
        else:
            raise _Invalid(f"member {name!r} has .npy version {version}")
        offset = m.tell()
    if found.hasobject:
        raise _Invalid(f"member {name!r} holds Python objects (dtype {found}); "
                         "nncore files hold numbers only, and objects are never read")
    if found.newbyteorder("=") != dtype.newbyteorder("=") or found.kind != dtype.kind:
        raise _Invalid(f"member {name!r} has dtype {found}; expected {dtype}")
    if n is None:
        if len(shape) != 1 or shape[0] > HEADER_MAX_BYTES:
            raise _Invalid(f"the header has shape {shape}; expected (n,) with n <= "
                             f"{HEADER_MAX_BYTES}")
        n = shape[0]
    elif shape != (n,):
        raise _Invalid(f"member {name!r} has shape {shape}; the header's architecture "
                         f"has {n} parameters")
    if info.file_size != offset + n * dtype.itemsize:
        raise _Invalid(f"member {name!r} is {info.file_size} bytes; its .npy header "
                         f"implies {offset + n * dtype.itemsize}")


def _read_member(npz, name):
    """A member checked by _check_member, in native byte order."""
    a = npz[name]     # np.load's own reader, allow_pickle=False
    return np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("="))


def _parse_header(raw):
    try:
        text = raw.tobytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Invalid(f"the header is not UTF-8 text ({exc})") from None
    try:
        header = json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:    # JSONDecodeError, or an integer of > 4300 digits
        raise _Invalid(f"the header is not JSON ({exc})") from None
    if not isinstance(header, dict):
        raise _Invalid("the header is JSON but not an object (a "
                       f"{type(header).__name__})")
    return header


def _reject_constant(name):
    raise _Invalid(f"the header holds {name}, which JSON does not allow")


# ------------------------------------------------------------- header checking
def check_header(header):
    """Check a header dict field by field, without allocating anything sized by it.

    Returns a spec: ``{"dtype", "layers" (Dense objects), "loss", "n_params",
    "seed", "rng", "optimizer" (None or {"object", "step", "n_arrays"}),
    "metadata"}``. Raises ValueError saying which field is wrong.
    """
    from .layers import Dense
    from .losses import LOSSES, check_loss, loss_from_params

    fmt = header.get("format")
    if fmt != FORMAT_NAME:
        raise _Invalid(f"not an nncore model file (format {fmt!r})")
    version = _field(header, "format_version", int, "the header")
    if version > FORMAT_VERSION:
        raise _Invalid(
            f"written in format version {version} by nncore "
            f"{header.get('nncore_version', '?')!s:.40}; this nncore reads format "
            f"versions up to {FORMAT_VERSION}: upgrade nncore to load it")
    if version < 1:
        raise _Invalid(f"format_version must be >= 1; got {version}")
    unknown = sorted(set(header) - set(_HEADER_KEYS))
    if unknown:
        raise _Invalid(f"the header has unknown fields {unknown[:10]}")
    _field(header, "nncore_version", str, "the header")
    dtype = _field(header, "dtype", str, "the header")
    if dtype not in ("float32", "float64"):
        raise _Invalid(f"dtype must be 'float32' or 'float64'; got {dtype!r:.40}")
    layers = _field(header, "layers", list, "the header")
    if not 1 <= len(layers) <= MAX_LAYERS:
        raise _Invalid(f"the header lists {len(layers)} layers; expected 1 to "
                         f"{MAX_LAYERS}")
    layers = [_layer(entry, i, Dense) for i, entry in enumerate(layers)]
    for i in range(1, len(layers)):
        if layers[i].fan_in != layers[i - 1].fan_out:
            raise _Invalid(f"the layers do not chain: layers[{i - 1}] has fan_out="
                           f"{layers[i - 1].fan_out}, layers[{i}] fan_in="
                           f"{layers[i].fan_in}")
    n_params = sum(layer.n_params for layer in layers)
    if _field(header, "n_params", int, "the header") != n_params:
        raise _Invalid(f"the header says n_params={header['n_params']}, but its layers "
                         f"hold {n_params} parameters")
    loss = _field(header, "loss", dict, "the header")
    name = _field(loss, "name", str, "the loss")
    if name not in LOSSES:
        raise _Invalid(f"unknown loss {name!r:.60}; this nncore knows {sorted(LOSSES)}")
    try:
        name = loss_from_params(name, _field(loss, "params", dict, "the loss"))
        check_loss(name, layers[-1].fan_out)
    except (ValueError, TypeError) as exc:
        raise _Invalid(str(exc)) from None
    seed = header.get("seed")
    if seed is not None and not (_is_int(seed) and seed >= 0):
        raise _Invalid(f"seed must be null or an integer >= 0; got {seed!r:.40}")
    opt = header.get("optimizer")
    return {"dtype": np.dtype(dtype), "layers": layers, "loss": name,
            "n_params": n_params, "seed": seed,
            "rng": _rng_state(_field(header, "rng", dict, "the header")),
            "optimizer": None if opt is None else _optimizer(opt),
            "metadata": _field(header, "metadata", dict, "the header")}


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _field(obj, key, kind, where):
    if key not in obj:
        raise _Invalid(f"{where} has no {key!r} field")
    value = obj[key]
    ok = _is_int(value) if kind is int else isinstance(value, kind)
    if not ok:
        raise _Invalid(f"{where}'s {key!r} must be a JSON {kind.__name__}; got "
                         f"{value!r:.60}")
    return value


def _layer(entry, i, Dense):
    where = f"layers[{i}]"
    if not isinstance(entry, dict):
        raise _Invalid(f"{where} must be a JSON object; got {entry!r:.60}")
    unknown = sorted(set(entry) - {"fan_in", "fan_out", "activation", "dropout"})
    if unknown:
        raise _Invalid(f"{where} has unknown fields {unknown[:10]}")
    fan_in = _field(entry, "fan_in", int, where)
    fan_out = _field(entry, "fan_out", int, where)
    activation = _field(entry, "activation", str, where)
    dropout = entry.get("dropout", 0.0)
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)):
        raise _Invalid(f"{where}'s dropout must be a number; got {dropout!r:.60}")
    kwargs = {"dropout": dropout} if dropout != 0 else {}
    try:
        return Dense(fan_in, fan_out, activation, **kwargs)
    except (TypeError, ValueError) as exc:
        raise _Invalid(f"{where}: {exc}") from None


def _rng_state(rng):
    if rng.get("bit_generator") != "PCG64":
        raise _Invalid(f"the shuffling generator must be 'PCG64'; got "
                         f"{rng.get('bit_generator')!r:.40}")
    if set(rng) != {"bit_generator", "state", "has_uint32", "uinteger"}:
        raise _Invalid(f"the generator state has fields {sorted(rng)[:10]}")
    inner = _field(rng, "state", dict, "the generator state")
    if set(inner) != set(_RNG_BOUNDS):
        raise _Invalid(f"the generator's PCG64 state has fields {sorted(inner)[:10]}")
    for key, bound in _RNG_BOUNDS.items():
        if not 0 <= _field(inner, key, int, "the PCG64 state") < bound:
            raise _Invalid(f"the PCG64 state's {key!r} is out of range")
    if _field(rng, "has_uint32", int, "the generator state") not in (0, 1):
        raise _Invalid("the generator's has_uint32 must be 0 or 1; got "
                       f"{rng['has_uint32']}")
    if not 0 <= _field(rng, "uinteger", int, "the generator state") < 1 << 32:
        raise _Invalid("the generator's uinteger is out of range")
    return rng


def _optimizer(entry):
    from .optimizers import OPTIMIZERS

    if not isinstance(entry, dict):
        raise _Invalid(f"the optimizer must be null or a JSON object; got {entry!r:.60}")
    classes = {cls.__name__: cls for cls in OPTIMIZERS.values()}
    name = _field(entry, "class", str, "the optimizer")
    if name not in classes:
        raise _Invalid(f"unknown optimizer {name!r:.60}; this nncore knows "
                         f"{sorted(classes)}")
    cls = classes[name]
    hyper = _field(entry, "hyper", dict, "the optimizer")
    unknown = sorted(set(hyper) - set(_constructor_parameters(cls)))
    if unknown:
        raise _Invalid(f"{name} takes no hyperparameters {unknown[:10]}")
    try:
        optimizer = cls(**hyper)
    except (TypeError, ValueError) as exc:
        raise _Invalid(f"the optimizer's hyperparameters: {exc}") from None
    step = _field(entry, "step", int, "the optimizer")
    n_arrays = _field(entry, "n_arrays", int, "the optimizer")
    if step < 0:
        raise _Invalid(f"the optimizer's step must be >= 0; got {step}")
    needs = optimizer._needs_state()
    # 0 arrays: an optimizer that has not trained yet (and so has taken no step).
    untrained = n_arrays == 0 and step == 0
    if n_arrays != needs and not untrained or n_arrays > MAX_OPTIMIZER_ARRAYS:
        raise _Invalid(f"{optimizer!r} at step {step} keeps {needs} state arrays; the "
                         f"header says {n_arrays}")
    return {"object": optimizer, "step": step, "n_arrays": n_arrays}


def _constructor_parameters(cls):
    return [name for name, p in inspect.signature(cls).parameters.items()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def _check_flag(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; got {value!r}")
    return bool(value)


# ---------------------------------------------------------------------- building
def build(spec, arrays, allow_nonfinite=False):
    """The Network a checked spec and its arrays (``params``, ``optimizer_i``,
    each of shape (n_params,) and the spec's dtype) describe."""
    from .network import Network

    if not allow_nonfinite:
        for name, a in arrays.items():
            bad = a.size - int(np.count_nonzero(np.isfinite(a)))
            if bad:
                what = "parameters" if name == "params" else "optimizer state"
                raise _Invalid(f"the {what} hold {bad} NaN or infinite values; pass "
                                 "allow_nonfinite=True to load them anyway")
    net = Network(list(spec["layers"]), loss=spec["loss"], dtype=spec["dtype"].name,
                  seed=spec["seed"])
    net.restore({"params": arrays["params"], "rng": spec["rng"], "optimizer": None})
    net.metadata = spec["metadata"]
    opt = spec["optimizer"]
    if opt is not None:
        optimizer = opt["object"]
        optimizer.restore({"step": opt["step"],
                           "arrays": [arrays[f"optimizer_{i}"]
                                      for i in range(opt["n_arrays"])]})
        optimizer._bind(net)
        net._optimizer = optimizer
    return net


# ------------------------------------------------------------ pickle and copy
# Networks and optimizers pickle (and deep-copy) through the header and arrays of the
# file format, never through their private attributes: the lock, the workspaces and
# the weak reference to the owning network are not part of the state.
def reduce_network(network):
    """``Network.__reduce__``: the header as JSON text, the flat parameters, the
    optimizer (pickled by :func:`reduce_optimizer`, so that an optimizer pickled
    alongside keeps its identity) and the history of the last ``fit``."""
    header, arrays = encode(network, include_optimizer=False)
    return (_unpickle_network,
            (json.dumps(header), arrays["params"], network.optimizer, network.history))


def _unpickle_network(text, params, optimizer, history):
    spec = check_header(json.loads(text))
    params = np.asarray(params)
    if params.dtype != spec["dtype"] or params.shape != (spec["n_params"],):
        raise _Invalid(f"the pickled parameters have shape {params.shape} and dtype "
                         f"{params.dtype}; the network has ({spec['n_params']},) "
                         f"{spec['dtype']}")
    net = build(spec, {"params": params}, allow_nonfinite=True)
    if optimizer is not None:
        optimizer._bind(net)
        net._optimizer = optimizer
    net.history = history
    return net


def reduce_optimizer(optimizer):
    """``Optimizer.__reduce__``: class, hyperparameters, step and state arrays. The
    copy is not bound to a network: it binds to the next one it trains (or to the
    copy of its network, when that is pickled with it)."""
    return (_unpickle_optimizer, (type(optimizer), hyperparameters(optimizer),
                                  int(optimizer.step), optimizer.state_arrays()))


def _unpickle_optimizer(cls, hyper, step, arrays):
    optimizer = cls(**hyper)
    optimizer.restore({"step": step, "arrays": arrays})
    return optimizer
