"""Types of the compiled kernels (nncore/_kernels.pyx; the _kernels_avx2 and
_kernels_avx512 builds have the same interface). Arrays of floats are float32 or
float64 throughout a call; index arrays are np.intp."""
import enum
from typing import Any

import numpy as np
from numpy.typing import NDArray

Floats = NDArray[np.float32] | NDArray[np.float64]
Indices = NDArray[np.intp]

BLAS_ABOVE: int
VECTOR_BYTES: int
LANES_MAX_WIDTH: int
LANES_MAX_INPUT: int

class Activation(enum.IntEnum):
    IDENTITY = 0
    SIGMOID = 1
    TANH = 2
    RELU = 3
    LEAKY_RELU = 4
    ELU = 5
    GELU = 6
    SOFTPLUS = 7

class Loss(enum.IntEnum):
    MSE = 0
    BINARY_CROSS_ENTROPY = 1
    CROSS_ENTROPY = 2
    GAUSSIAN_NLL = 3

class Optimizer(enum.IntEnum):
    SGD = 0
    ADAM = 1
    ADAMW = 2
    RMSPROP = 3

class Status(enum.IntEnum):
    OK = 0
    NONFINITE_LOSS = 1

def feature_major(sizes: Indices, dtype: object) -> bool: ...
def workspace_size(sizes: Indices, rows: int) -> int: ...
def forward(params: Floats, sizes: Indices, acts: Indices, X: Floats, out: Floats,
            work: Floats, cap: int) -> None: ...
def output_transform(loss: int, out: Floats) -> None: ...
def loss_and_grads(params: Floats, grads: Floats, sizes: Indices, acts: Indices, loss: int,
                   X: Floats, T: Floats, labels: Indices, sample_weight: Floats,
                   work: Floats, cap: int, want_grads: bool) -> float: ...
def train_batches(params: Floats, grads: Floats, state1: Floats, state2: Floats,
                  sizes: Indices, acts: Indices, loss: int, X: Floats, T: Floats,
                  labels: Indices, sample_weight: Floats, order: Indices, work: Floats,
                  T_batch: Floats, labels_batch: Indices, w_batch: Floats,
                  batch_size: int, first_batch: int, n_batches: int, kind: int,
                  lr: float, momentum: float, nesterov: bool, weight_decay: float,
                  beta1: float, beta2: float, eps: float, alpha: float, step: int,
                  loss_sum: float = 0.0, weight_sum: float = 0.0
                  ) -> tuple[float, float, int, int, int]: ...
def matmul_into(A: Floats, B: Floats, C: Floats, trans_a: bool, trans_b: bool,
                accumulate: bool, path: int = 0) -> None: ...
def set_blocking(l2: int, l3: int) -> None: ...
def get_blocking() -> dict[str, Any]: ...
def set_thread_limit(n: int) -> None: ...
def get_thread_limit() -> int: ...
def team_size(measure: bool = False) -> int: ...
