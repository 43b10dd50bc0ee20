/* Minimal test harness for the libwsauth C tests: CHECK never compiles away
 * (unlike assert under NDEBUG), counts results and prints the summary line. */
#ifndef WSAUTH_TEST_CHECK_H
#define WSAUTH_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wsauth.h"

static int checks_passed = 0;
static int checks_failed = 0;

#define CHECK(cond)                                                                 \
  do {                                                                              \
    if (cond) {                                                                     \
      checks_passed++;                                                              \
    } else {                                                                        \
      checks_failed++;                                                              \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);      \
    }                                                                               \
  } while (0)

#define CHECK_RC(expr, want)                                                        \
  do {                                                                              \
    wsauth_result rc_ = (expr);                                                     \
    if (rc_ == (wsauth_result)(want)) {                                             \
      checks_passed++;                                                              \
    } else {                                                                        \
      checks_failed++;                                                              \
      fprintf(stderr, "%s:%d: %s returned %u (%s), wanted %u\n", __FILE__, __LINE__, \
              #expr, (unsigned)rc_, wsauth_result_describe(rc_), (unsigned)(want)); \
    }                                                                               \
  } while (0)

/* A NUL-terminated copy of an ABI output (outputs are not NUL-terminated). */
static char *dup_out(const char *buf, size_t len) {
  char *s = malloc(len + 1);
  if (s == NULL) {
    abort();
  }
  memcpy(s, buf, len);
  s[len] = '\0';
  return s;
}

/* True when the output holds `needle`. */
static int out_has(const char *buf, size_t len, const char *needle) {
  char *s = dup_out(buf, len);
  int found = strstr(s, needle) != NULL;
  free(s);
  return found;
}

/* Prints the summary line and returns the process exit code. */
static int finish(const char *suite) {
  printf("%s: %d passed, %d failed\n", suite, checks_passed, checks_failed);
  return checks_failed == 0 && checks_passed > 0 ? 0 : 1;
}

#endif
