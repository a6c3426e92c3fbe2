# cython: language_level=3
"""The kernel codes of ``_codes.pxd``, as Python enums and name -> code tables.

The enums (``Activation``, ``Loss``, ``Optimizer``, ``Status``) are defined in
``_codes.pxd``, the one table the kernels cimport; compiling this module makes them
Python ``IntEnum`` classes, from which ``codes`` reads the names.
"""


def codes(kind):
    """The codes of one table of ``_codes.pxd``, by name.

    Parameters
    ----------
    kind : {Activation, Loss, Optimizer}
        One of the enums of this module.

    Returns
    -------
    dict
        ``{name: code}`` in code order, the names lower-cased (``"leaky_relu"``),
        without the table's count (its last member, ``N_...``).
    """
    names = [m.name for m in kind]
    n = len(names) - 1
    if not names[n].startswith("N_") or kind[names[n]] != n:
        raise ValueError(f"{kind.__name__} does not end with its count")
    return {name.lower(): int(kind[name]) for name in names[:n]}
