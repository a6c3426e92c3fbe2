# --------------------------------------------------------------------------------
# Process-wide settings: the products' cache blocking, the thread limit
# --------------------------------------------------------------------------------
# (Included by nncore/_kernels.pyx, in the order there: the kernels are one compiled
# module.) Both are made when the module is imported: the blocking from the running
# CPU's cache sizes (nncore/_cpu.py; the rule is in nncore/csrc/blocking.h), the
# thread limit from nncore.set_num_threads's (nncore/threads.py), which also sets it
# in every build already imported.

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


def set_thread_limit(int n):
    """Use at most ``n`` threads in every parallel region, whichever thread starts it
    (0: no limit of nncore's own; OpenMP's limit of the calling thread then decides).

    Parameters
    ----------
    n : int
        >= 0.
    """
    if n < 0:
        raise ValueError(f"set_thread_limit: n must be >= 0; got {n}")
    nn_set_thread_limit(n)


def get_thread_limit():
    """The limit set by ``set_thread_limit`` (0: none)."""
    return nn_get_thread_limit()


def team_size(bint measure=False):
    """The threads a parallel region started now, by the calling thread, uses: the
    thread limit, capped by this thread's OpenMP limit (1 without OpenMP).

    ``measure``: open an (empty) region the way the kernels do and count its team,
    rather than compute what it asks for.
    """
    cdef int used
    if not measure:
        return nn_team_size()
    with nogil:
        used = nn_team_size_used()
    return used


def _configure_for_this_process():
    import nncore._cpu
    import nncore.threads
    sizes = nncore._cpu.cache_sizes()
    set_blocking(sizes["l2"], sizes["l3"])
    set_thread_limit(nncore.threads.thread_limit())


_configure_for_this_process()
