/* threads.h: how many threads the kernels' parallel regions use.
 *
 * Holds the process-wide thread limit (nn_set_thread_limit, set by
 * nncore.set_num_threads through _kernels.set_thread_limit), the calling thread's cap
 * for the length of one kernel call (nn_set_call_cap: the training loop's measured
 * choice of team, nncore/_team.py) and nn_team_size, the team size a parallel region
 * started by the calling thread asks for: the smallest of that limit, that cap and
 * the calling thread's own OpenMP limit. Every parallel region of the
 * kernels passes it in a num_threads clause; nn_team_size_used opens one to see.
 * OpenMP's own limit is per thread (a new Python thread starts with the default, all
 * cores); the process-wide one holds in every thread. Without OpenMP everything runs
 * on the calling thread.
 */
#ifndef NNCORE_CSRC_THREADS_H
#define NNCORE_CSRC_THREADS_H

#include "config.h"

/* The process-wide limit; 0 for none (then OpenMP's limit alone decides). Read and
 * written atomically: a thread may change it while another starts a region. */
static int nn_thread_limit = 0;

static inline void nn_set_thread_limit(int n)
{
#if defined(__GNUC__)
    __atomic_store_n(&nn_thread_limit, n > 0 ? n : 0, __ATOMIC_RELAXED);
#else
    nn_thread_limit = n > 0 ? n : 0;
#endif
}

static inline int nn_get_thread_limit(void)
{
#if defined(__GNUC__)
    return __atomic_load_n(&nn_thread_limit, __ATOMIC_RELAXED);
#else
    return nn_thread_limit;
#endif
}

/* The calling thread's cap for one kernel call; 0 for none. Per thread, so that a
 * call in one Python thread never caps another's; a kernel entry point sets it before
 * its regions and clears it when it returns. */
#if defined(__GNUC__)
static __thread int nn_call_cap = 0;
#else
static int nn_call_cap = 0;
#endif

static inline void nn_set_call_cap(int n) { nn_call_cap = n > 0 ? n : 0; }

/* The threads a parallel region started by the calling thread uses: the process-wide
 * limit and the call's cap, capped by this thread's OpenMP limit (OMP_NUM_THREADS,
 * threadpoolctl). */
static inline int nn_team_size(void)
{
#if defined(_OPENMP)
    int n = omp_get_max_threads(), limit = nn_get_thread_limit();
    if (limit > 0 && limit < n) n = limit;
    if (nn_call_cap > 0 && nn_call_cap < n) n = nn_call_cap;
    return n;
#else
    return 1;
#endif
}

/* The size of the team a parallel region of the kernels, started now by the calling
 * thread, actually gets: an empty region, opened the way the kernels open theirs. */
static inline int nn_team_size_used(void)
{
    int used = 1;
#if defined(_OPENMP)
    NN_PRAGMA(omp parallel num_threads(nn_team_size()))
    {
        NN_PRAGMA(omp single)
        used = omp_get_num_threads();
    }
#endif
    return used;
}

#endif /* NNCORE_CSRC_THREADS_H */
