# --------------------------------------------------------------------------------
# The matrix product's cache blocking, from the running CPU's cache sizes
# --------------------------------------------------------------------------------
# (Included by nncore/_kernels.pyx, in the order there: the kernels are one compiled
# module.) The rule is in nncore/csrc/blocking.h; the sizes come from nncore/_cpu.py.

def set_blocking(Py_ssize_t l2, Py_ssize_t l3):
    """Block the matrix products for an L2 cache of ``l2`` bytes and an L3 of ``l3``.

    Called when this module is imported, with the running CPU's sizes; tests and
    benchmarks call it with others. 0 stands for a size the operating system did not
    report (the fallback size of nncore/csrc/blocking.h is taken). The blocking never
    changes a result, only its speed.

    Parameters
    ----------
    l2, l3 : int
        Cache sizes in bytes, >= 0.
    """
    if l2 < 0:
        raise ValueError(f"set_blocking: l2 must be >= 0 bytes; got {l2}")
    if l3 < 0:
        raise ValueError(f"set_blocking: l3 must be >= 0 bytes; got {l3}")
    nn_set_blocking(l2, l3)


def get_blocking():
    """The blocking of the matrix products (see nncore/csrc/blocking.h).

    Returns
    -------
    dict
        ``l2``, ``l3``: the cache sizes it was derived from (bytes); ``kc``: the most
        terms of a k-block (fixed); ``mr``: rows of a register tile; and per dtype
        (``"float32"``, ``"float64"``): ``nr``, the columns of a packed panel; ``mc``,
        the most rows of a row block; ``nc``, the most columns of a column block (for
        full k-blocks).
    """
    info = {"l2": nn_blocking.l2, "l3": nn_blocking.l3, "kc": NN_KC, "mr": NN_MR}
    for name, size in (("float32", 4), ("float64", 8)):
        nr = 2 * NN_VBYTES // size
        info[name] = {"nr": nr, "mc": nn_block_rows(NN_KC, size),
                      "nc": nn_block_cols(NN_KC, size, nr)}
    return info


def _block_for_this_cpu():
    import nncore._cpu
    sizes = nncore._cpu.cache_sizes()
    set_blocking(sizes["l2"], sizes["l3"])


_block_for_this_cpu()
