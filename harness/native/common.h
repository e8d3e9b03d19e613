/*
 * Shared by mb-delayfwd and mb-probe: fatal errors (exit 2, prefixed with the
 * program name), a clock, and the duration syntax ("10ms", "500us", "1.5s",
 * "20000ns", "2m"; a bare number is milliseconds). Set `prog` before use.
 */
#ifndef MB_NATIVE_COMMON_H
#define MB_NATIVE_COMMON_H
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *prog;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn, unused));
static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%s: ", prog);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(2);
}

static inline int64_t now_ns(clockid_t c) {
  struct timespec ts;
  clock_gettime(c, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline int64_t parse_duration_ns(const char *opt, const char *s) {
  char *end;
  double v = strtod(s, &end);
  if (end == s || v < 0) die("%s: '%s' is not a duration (use e.g. 10ms, 500us, 1s)", opt, s);
  double mul;
  if (*end == 0 || strcmp(end, "ms") == 0) mul = 1e6;
  else if (strcmp(end, "us") == 0) mul = 1e3;
  else if (strcmp(end, "ns") == 0) mul = 1;
  else if (strcmp(end, "s") == 0) mul = 1e9;
  else if (strcmp(end, "m") == 0) mul = 60e9;
  else die("%s: unknown unit in '%s' (use ns, us, ms, s or m)", opt, s);
  return (int64_t)(v * mul + 0.5);
}
#endif
