/*
 * check.h - the C tests' pass/fail counters, CHECK and the closing line
 * ("NAME: P passed, F failed", exit status 1 on any failure). Header-only:
 * each test is one translation unit.
 */
#ifndef CHECK_H
#define CHECK_H

#include <stdio.h>

static int passed, failed;

/* CHECK(cond, fmt, ...): counts cond; a failure prints where, the condition and the message. */
#define CHECK(cond, ...) do {                                                  \
        if (cond) { passed++; }                                                \
        else { failed++; printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
               printf(__VA_ARGS__); printf("\n"); }                            \
    } while (0)

/* The closing line; returns main's exit status. */
static inline int check_report(const char *name)
{
    printf("%s: %d passed, %d failed\n", name, passed, failed);
    return failed ? 1 : 0;
}

#endif
