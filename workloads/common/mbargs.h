/*
 * Shared by the guest programs: clock, usage errors, and the size/time
 * argument syntax (sizes K/M/G binary with optional iB/B; times ns/us/ms/s,
 * bare numbers are ms). Define MB_PROG before including.
 */
#ifndef MB_ARGS_H
#define MB_ARGS_H
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef MB_PROG
#error "define MB_PROG (the program name) before including mbargs.h"
#endif

static inline uint64_t now_ns_clock(clockid_t c) {
  struct timespec ts;
  clock_gettime(c, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static inline uint64_t now_ns(void) { return now_ns_clock(CLOCK_MONOTONIC); }

static inline void die_usage(const char *msg, const char *arg) {
  fprintf(stderr, MB_PROG ": %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
  exit(2);
}

static inline int parse_size(const char *s, uint64_t *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || v < 0) return -1;
  uint64_t mul = 1;
  switch (*end) {
  case 'k': case 'K': mul = 1ULL << 10; end++; break;
  case 'm': case 'M': mul = 1ULL << 20; end++; break;
  case 'g': case 'G': mul = 1ULL << 30; end++; break;
  default: break;
  }
  if (mul > 1 && *end == 'i') end++;
  if (*end == 'B' || *end == 'b') end++;
  if (*end) return -1;
  *out = (uint64_t)(v * (double)mul);
  return 0;
}

static inline int parse_time_ns(const char *s, uint64_t *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || v < 0) return -1;
  double mul;
  if (!*end || !strcmp(end, "ms")) mul = 1e6;
  else if (!strcmp(end, "s")) mul = 1e9;
  else if (!strcmp(end, "us")) mul = 1e3;
  else if (!strcmp(end, "ns")) mul = 1;
  else return -1;
  *out = (uint64_t)(v * mul);
  return 0;
}

/*
 * One argument in any of the accepted forms: key=value, --key=value,
 * --key value, or a bare flag named in `flags` (NULL-terminated; its value
 * is ""). '-' in keys reads as '_' (--vm-bytes like stress). Advances *i
 * past a separate value.
 */
static inline const char *mb_arg(int argc, char **argv, int *i, char *key, size_t keylen, const char *const *flags) {
  const char *a = argv[*i];
  while (*a == '-') a++;
  const char *eq = strchr(a, '=');
  size_t kl = eq ? (size_t)(eq - a) : strlen(a);
  if (kl == 0 || kl >= keylen) die_usage("bad argument", argv[*i]);
  memcpy(key, a, kl);
  key[kl] = 0;
  for (char *p = key; *p; p++) if (*p == '-') *p = '_';
  if (!eq && flags)
    for (const char *const *f = flags; *f; f++)
      if (!strcmp(key, *f)) return "";
  const char *val = eq ? eq + 1 : (*i + 1 < argc ? argv[++*i] : NULL);
  if (!val) die_usage("missing value for", key);
  return val;
}
#endif
