/*
 * pc_alloc.h - every allocation of the core goes through these macros, so a
 * test or a fuzz harness can make the Nth allocation fail (pc_alloc_fail_after).
 */
#ifndef PC_ALLOC_H
#define PC_ALLOC_H

#include <stddef.h>
#include <stdlib.h>

void *pc_malloc(size_t n);
void *pc_calloc(size_t count, size_t size);
void *pc_realloc(void *p, size_t n);
void pc_free(void *p);

/*
 * Test hook: after n more successful allocations, every allocation fails
 * until called again with a negative n (the default: never fail).
 */
void pc_alloc_fail_after(long n);

#endif
