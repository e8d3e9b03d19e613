/*
 * mb-cpu: CPU load at a target utilisation (Salfner et al. ran burnP6 under
 * cpulimit). Each thread runs a duty cycle: busy for util% of every slice,
 * asleep for the rest, so the load is steady at a fine grain (a 100 ms slice
 * would show up as bursts in a 10 ms probe; the default slice is 10 ms).
 *
 * Arguments (key=value, --key=value or --key value):
 *   util=PCT      target utilisation per thread, 1-100 (default 100)
 *   threads=N     busy threads (default: number of online CPUs)
 *   slice=TIME    duty-cycle length (default 10ms); ns/us/ms/s, bare = ms
 *   report=TIME   report interval (default 1s)
 *   duration=TIME stop after this long (default 0: run until killed)
 *   ready=PATH    create PATH once all threads run
 * Output: MB-CPU-START ... and every report interval
 *   MB-CPU up=<s> util_pct=<achieved busy share, all threads> target_pct=..
 *          threads=.. loops=<work units done>
 * Exit code 2 on bad arguments.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MB_PROG "mb-cpu"
#include "../common/mbargs.h"

static int util = 100;
static uint64_t slice_ns = 10000000ULL;
static volatile uint64_t loops[64];
static volatile uint64_t busy_ns[64];

static void *burn(void *arg) {
  int id = (int)(intptr_t)arg;
  volatile double x = 1.0001;
  uint64_t next = now_ns_clock(CLOCK_MONOTONIC);
  for (;;) {
    uint64_t start = now_ns_clock(CLOCK_MONOTONIC);
    uint64_t busy_until = start + slice_ns * (uint64_t)util / 100;
    while (now_ns_clock(CLOCK_MONOTONIC) < busy_until) {
      for (int i = 0; i < 1000; i++) x = x * 1.0000001 + 0.0000001; /* floating-point work, like burnP6 */
      loops[id]++;
    }
    busy_ns[id] += now_ns_clock(CLOCK_MONOTONIC) - start;
    next += slice_ns;
    uint64_t t = now_ns_clock(CLOCK_MONOTONIC);
    if (next < t) next = t; /* fell behind (stolen CPU): do not burst to catch up */
    if (util < 100) {
      struct timespec ts = { .tv_sec = (time_t)(next / 1000000000ULL), .tv_nsec = (long)(next % 1000000000ULL) };
      while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {}
    }
  }
  return NULL;
}

int main(int argc, char **argv) {
  long threads = sysconf(_SC_NPROCESSORS_ONLN);
  uint64_t report_ns = 1000000000ULL, duration_ns = 0;
  const char *ready = NULL;
  for (int i = 1; i < argc; i++) {
    char key[32];
    const char *val = mb_arg(argc, argv, &i, key, sizeof key, NULL);
    char *end;
    if (!strcmp(key, "util")) {
      long u = strtol(val, &end, 10);
      if (*end == '%') end++;
      if (*end || u < 1 || u > 100) die_usage("util must be 1-100", val);
      util = (int)u;
    } else if (!strcmp(key, "threads")) {
      threads = strtol(val, &end, 10);
      if (*end || threads < 1 || threads > 64) die_usage("threads must be 1-64", val);
    } else if (!strcmp(key, "slice")) {
      if (parse_time_ns(val, &slice_ns) || slice_ns < 100000) die_usage("slice must be >= 100us", val);
    } else if (!strcmp(key, "report")) {
      if (parse_time_ns(val, &report_ns) || report_ns == 0) die_usage("bad report", val);
    } else if (!strcmp(key, "duration")) {
      if (parse_time_ns(val, &duration_ns)) die_usage("bad duration", val);
    } else if (!strcmp(key, "ready")) ready = val;
    else die_usage("unknown option", key);
  }
  if (threads < 1) threads = 1;
  setvbuf(stdout, NULL, _IOLBF, 0);
  printf("MB-CPU-START pid=%d util=%d threads=%ld slice_us=%llu\n", (int)getpid(), util, threads,
         (unsigned long long)(slice_ns / 1000));
  for (long t = 0; t < threads; t++) {
    pthread_t th;
    if (pthread_create(&th, NULL, burn, (void *)(intptr_t)t) != 0) { perror("mb-cpu: pthread_create"); return 1; }
    pthread_detach(th);
  }
  if (ready) {
    int fd = open(ready, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) close(fd);
  }
  uint64_t start = now_ns_clock(CLOCK_MONOTONIC), last = start, last_busy = 0, last_loops = 0;
  for (;;) {
    struct timespec ts = { .tv_sec = (time_t)(report_ns / 1000000000ULL), .tv_nsec = (long)(report_ns % 1000000000ULL) };
    nanosleep(&ts, NULL);
    uint64_t t = now_ns_clock(CLOCK_MONOTONIC), b = 0, l = 0;
    for (long i = 0; i < threads; i++) { b += busy_ns[i]; l += loops[i]; }
    double share = 100.0 * (double)(b - last_busy) / ((double)(t - last) * (double)threads);
    printf("MB-CPU up=%.3f util_pct=%.1f target_pct=%d threads=%ld loops=%llu\n", (double)(t - start) / 1e9, share, util,
           threads, (unsigned long long)(l - last_loops));
    last = t; last_busy = b; last_loops = l;
    if (duration_ns && t - start >= duration_ns) return 0;
  }
}
