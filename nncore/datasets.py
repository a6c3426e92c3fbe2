"""Small built-in data sets for examples, tests and the command line.

``make_spiral`` and ``make_xor`` are generated here; ``load_digits`` borrows
scikit-learn's copy of the UCI 8x8 handwritten digits (an optional dependency, part of
the ``test`` extra). ``load`` gives any of them by name, split into a training and a
test part.
"""
from __future__ import annotations

import numpy as np

from . import _validation

__all__ = ["make_spiral", "make_xor", "load_digits", "load", "NAMES"]

#: The data sets ``load`` knows.
NAMES = ("digits", "spiral", "xor")

# The test spiral is drawn with the seed plus this, so that it differs from the
# training spiral of this seed and of the nearby seeds a user tries.
_SPIRAL_TEST_SEED_OFFSET = 1_000_003
_DIGITS_TEST_FRACTION = 0.2


def _check_seed(seed):
    if seed is None:
        return None
    return _validation.check_int(seed, "seed", 0)


def make_spiral(n_per_class: int = 100, n_classes: int = 3, noise: float = 0.2,
                seed: int | None = 0) -> tuple[np.ndarray, np.ndarray]:
    """Interleaved spiral arms in the plane, one arm per class.

    Class ``c`` has ``n_per_class`` points at radii ``r`` evenly spaced in [0, 1] and
    angles ``theta = 4 c + 4 r + noise * N(0, 1)`` (radians), placed at
    ``(r sin theta, r cos theta)``. The arms wind around each other, so the classes are
    not linearly separable: a network needs a hidden layer to fit them.

    Parameters
    ----------
    n_per_class : int, default 100
        Points per class, >= 1.
    n_classes : int, default 3
        Number of arms (classes), >= 1.
    noise : float, default 0.2
        Standard deviation of the angular noise in radians, >= 0.
    seed : int or None, default 0
        Seed of the generator that draws the noise (>= 0); None draws fresh noise.

    Returns
    -------
    X : ndarray of shape (n_per_class * n_classes, 2), float64
        Points, inside the unit disc (up to the noise, which only turns them).
    y : ndarray of shape (n_per_class * n_classes,), intp
        Class labels in ``[0, n_classes)``; rows come class by class.

    Examples
    --------
    >>> X, y = make_spiral(50, 3, seed=0)
    >>> X.shape, y.shape, sorted(set(y.tolist()))
    ((150, 2), (150,), [0, 1, 2])
    """
    n_per_class = _validation.check_int(n_per_class, "n_per_class", 1)
    n_classes = _validation.check_int(n_classes, "n_classes", 1)
    noise = _validation.check_float(noise, "noise", low=0)
    rng = np.random.default_rng(_check_seed(seed))
    r = np.linspace(0.0, 1.0, n_per_class)
    X = np.empty((n_per_class * n_classes, 2), dtype=np.float64)
    y = np.repeat(np.arange(n_classes, dtype=np.intp), n_per_class)
    for c in range(n_classes):
        theta = 4.0 * c + 4.0 * r + noise * rng.standard_normal(n_per_class)
        rows = slice(c * n_per_class, (c + 1) * n_per_class)
        X[rows, 0] = r * np.sin(theta)
        X[rows, 1] = r * np.cos(theta)
    return X, y


def make_xor() -> tuple[np.ndarray, np.ndarray]:
    """The four points of the XOR problem.

    Returns
    -------
    X : ndarray of shape (4, 2), float64
        ``[[0, 0], [0, 1], [1, 0], [1, 1]]``.
    y : ndarray of shape (4, 1), float64
        ``x0 XOR x1``: ``[[0], [1], [1], [0]]``.

    Examples
    --------
    >>> X, y = make_xor()
    >>> y.ravel().tolist()
    [0.0, 1.0, 1.0, 0.0]
    """
    X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = np.array([[0.0], [1.0], [1.0], [0.0]])
    return X, y


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 handwritten digits (1797 images, 10 classes).

    Needs scikit-learn (``pip install scikit-learn``, or ``pip install "nncore[test]"``).

    Returns
    -------
    X : ndarray of shape (1797, 64), float64
        Pixel intensities scaled from 0..16 to [0, 1], one flattened image per row.
    y : ndarray of shape (1797,), intp
        The digit, 0 to 9.

    Raises
    ------
    ImportError
        When scikit-learn is not installed.
    """
    try:
        from sklearn.datasets import load_digits as _sklearn_load_digits
    except ImportError as exc:
        raise ImportError(
            "nncore.datasets.load_digits needs scikit-learn, which is not installed: "
            "pip install scikit-learn (or install nncore's test extra: "
            "pip install \"nncore[test]\")") from exc
    data = _sklearn_load_digits()
    X = np.ascontiguousarray(data.data, dtype=np.float64) / 16.0
    y = np.ascontiguousarray(data.target, dtype=np.intp)
    return X, y


def load(name: str, seed: int = 0
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """A built-in data set by name, split into a training and a test part.

    ``"spiral"``: :func:`make_spiral` with ``seed`` for training, and a second spiral
    drawn with another seed for testing. ``"digits"``: :func:`load_digits`, with a
    seeded 20% of the images held out for testing. ``"xor"``: the four points of
    :func:`make_xor`, with no test part.

    Parameters
    ----------
    name : {"digits", "spiral", "xor"}
    seed : int, default 0
        Seeds the spiral's noise and the digits' split (>= 0).

    Returns
    -------
    X_train : ndarray of shape (n_train, n_features), float64
    y_train : ndarray
        Labels of shape (n_train,), intp, for spiral and digits; targets of shape
        (4, 1), float64, for xor.
    X_test : ndarray of shape (n_test, n_features), float64, or None
    y_test : ndarray of shape (n_test,), intp, or None
        None for xor.

    Raises
    ------
    ValueError
        For an unknown name.
    ImportError
        For digits, when scikit-learn is not installed.

    Examples
    --------
    >>> X, y, X_test, y_test = load("spiral", seed=0)
    >>> X.shape, X_test.shape
    ((300, 2), (300, 2))
    """
    if not isinstance(name, str) or name not in NAMES:
        raise ValueError(f"name must be one of {', '.join(NAMES)}; got {name!r}")
    seed = _validation.check_int(seed, "seed", 0)
    if name == "spiral":
        X, y = make_spiral(seed=seed)
        return (X, y) + make_spiral(seed=seed + _SPIRAL_TEST_SEED_OFFSET)
    if name == "digits":
        X, y = load_digits()
        order = np.random.default_rng(seed).permutation(len(X))
        n_test = int(round(_DIGITS_TEST_FRACTION * len(X)))
        test, train = order[:n_test], order[n_test:]
        return X[train], y[train], X[test], y[test]
    X, y = make_xor()
    return X, y, None, None
