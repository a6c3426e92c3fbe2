"""Types of nncore._codes (compiled from _codes.pyx and _codes.pxd). The members of
Activation, Loss and Optimizer are listed only in _codes.pxd, the one table of the
kernel codes: read them with ``codes``."""
import enum

class Activation(enum.IntEnum): ...
class Loss(enum.IntEnum): ...
class Optimizer(enum.IntEnum): ...

class Status(enum.IntEnum):
    OK = 0
    NONFINITE_LOSS = 1

def codes(kind: type[enum.IntEnum]) -> dict[str, int]: ...
