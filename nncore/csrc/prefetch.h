/* prefetch.h: nn_prefetch_bytes, a hint to bring memory into the cache ahead of its
 * use (the rows of the next shuffled batch, scattered over a data set).
 */
#ifndef NNCORE_CSRC_PREFETCH_H
#define NNCORE_CSRC_PREFETCH_H

#include <stddef.h>
#include <stdint.h>

/* Ask for the cache lines of p[0 .. nbytes) ahead of their use (into L2: reads of
 * rows scattered over a data set, gathered one batch later). A hint only. */
static inline void nn_prefetch_bytes(const void *p, ptrdiff_t nbytes)
{
#if defined(__GNUC__)
    uintptr_t line = (uintptr_t)p & ~(uintptr_t)63, end = (uintptr_t)p + nbytes;
    for (; line < end; line += 64) __builtin_prefetch((const void *)line, 0, 2);
#else
    (void)p; (void)nbytes;
#endif
}

#endif /* NNCORE_CSRC_PREFETCH_H */
