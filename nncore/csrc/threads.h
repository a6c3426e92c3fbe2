/* threads.h: how many threads the kernels' parallel regions use.
 *
 * Holds the process-wide thread limit (nn_set_thread_limit, set by
 * nncore.set_num_threads through _kernels.set_thread_limit) and nn_team_size, the
 * team size a parallel region started by the calling thread asks for: the smaller of
 * that limit and the calling thread's own OpenMP limit. Every parallel region of the
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

/* The threads a parallel region started by the calling thread uses: the process-wide
 * limit, capped by this thread's OpenMP limit (OMP_NUM_THREADS, threadpoolctl). */
static inline int nn_team_size(void)
{
#if defined(_OPENMP)
    int limit = nn_get_thread_limit(), omp = omp_get_max_threads();
    return limit > 0 && limit < omp ? limit : omp;
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
