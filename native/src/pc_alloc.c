#include "pc_alloc.h"

/* Negative: allocations never fail on purpose. */
static long fail_after = -1;

void pc_alloc_fail_after(long n) { fail_after = n; }

static int should_fail(void)
{
    if (fail_after < 0)
        return 0;
    if (fail_after == 0)
        return 1;
    fail_after--;
    return 0;
}

void *pc_malloc(size_t n) { return should_fail() ? NULL : malloc(n ? n : 1); }
void *pc_calloc(size_t count, size_t size) { return should_fail() ? NULL : calloc(count ? count : 1, size ? size : 1); }
void *pc_realloc(void *p, size_t n) { return should_fail() ? NULL : realloc(p, n ? n : 1); }
void pc_free(void *p) { free(p); }
