"""Types of the compiled kernels (nncore/_kernels.pyx; the _kernels_avx2 and
_kernels_avx512 builds have the same interface). Arrays of floats are float32 or
float64 throughout a call; index arrays are np.intp. The activation, loss,
optimizer and status codes are in nncore._codes."""
from typing import Any

import numpy as np
from numpy.typing import NDArray

Floats = NDArray[np.float32] | NDArray[np.float64]
Indices = NDArray[np.intp]

BLAS_ABOVE: int
VECTOR_BYTES: int
FM_MAX_WIDTH: int
FM_MAX_INPUT: int

def feature_major(sizes: Indices, dtype: object) -> bool: ...
def workspace_size(sizes: Indices, rows: int) -> int: ...
def forward(params: Floats, sizes: Indices, acts: Indices, X: Floats, out: Floats,
            work: Floats, cap: int) -> None: ...
def output_transform(loss: int, out: Floats) -> None: ...
def loss_and_grads(params: Floats, grads: Floats | None, sizes: Indices,
                   acts: Indices, loss: int, X: Floats, T: Floats | None,
                   labels: Indices | None, sample_weight: Floats | None,
                   work: Floats, cap: int, out: Floats | None = None) -> float: ...
def train_batches(params: Floats, grads: Floats, sizes: Indices, acts: Indices,
                  loss: int, loss_params: NDArray[np.float64] | None, X: Floats,
                  T: Floats | None, labels: Indices | None,
                  sample_weight: Floats | None, order: Indices | None,
                  work: Floats, batch_size: int, first_batch: int, n_batches: int,
                  optimizer: dict[str, Any], state1: Floats | None,
                  state2: Floats | None, step: int, loss_sum: float = 0.0,
                  weight_sum: float = 0.0, *,
                  dropout: NDArray[np.float64] | None = None, seed: int = 0,
                  hits: NDArray[np.float64] | None = None, threads: int = 0
                  ) -> tuple[float, float, int, int, int]: ...
def matmul_into(A: Floats, B: Floats, C: Floats, trans_a: bool, trans_b: bool,
                accumulate: bool, path: int = 0) -> None: ...
def all_finite_bits(bits: NDArray[np.uint32] | NDArray[np.uint64]) -> bool: ...
def shuffle_into(order: Indices, draws: NDArray[np.uint32]) -> None: ...
def set_blocking(l2: int, l3: int) -> None: ...
def get_blocking() -> dict[str, Any]: ...

PREDICT_MAX_ROWS: int

class Predictor:
    params: Floats
    def __init__(self, params: Floats, sizes: Indices, acts: Indices, loss: int,
                 lock: Any) -> None: ...
    def run(self, X: object, transform: bool) -> Floats | None: ...
def grad_sums(params: Floats, out: Floats, sizes: Indices, acts: Indices, loss: int,
              loss_params: NDArray[np.float64] | None, X: Floats, T: Floats | None,
              labels: Indices | None,
              sample_weight: Floats | None, order: Indices | None, start: int,
              count: int, work: Floats, cap: int) -> None: ...
def apply_gradient(params: Floats, grads: Floats, state1: Floats | None,
                   state2: Floats | None, scale: float, optimizer: dict[str, Any],
                   step: int) -> None: ...
def train_many(params: list[Floats], grads: list[Floats],
               state1: list[Floats | None], state2: list[Floats | None],
               sizes: Indices, acts: Indices, loss: int,
               loss_params: NDArray[np.float64] | None, X: Floats, T: Floats | None,
               labels: Indices | None, sample_weight: Floats | None,
               order: Indices | None, work: Floats, batch_size: int,
               first_batch: int, n_batches: int, optimizers: list[dict[str, Any]],
               steps: Indices, active: Indices, loss_sums: NDArray[np.float64],
               weight_sums: NDArray[np.float64],
               hits: NDArray[np.float64] | None, dropout: list[NDArray[np.float64] | None],
               seeds: NDArray[np.uint64]) -> int: ...
def many_group_size(n_params: int, itemsize: int, arrays: int, K: int) -> int: ...
def set_thread_limit(n: int) -> None: ...
def get_thread_limit() -> int: ...
def team_size(measure: bool = False) -> int: ...
