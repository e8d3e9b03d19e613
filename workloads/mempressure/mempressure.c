/*
 * mb-mempressure: holds PERCENT of the guest's MemTotal in anonymous memory
 * and keeps touching it, so that with a swap device the guest swaps
 * continuously (Truong et al. stressed memory to 83-91 % with swapping).
 * Pages hold a counter word and zeros: compressible, so a zram swap device
 * frees real RAM when they are swapped out, and never same-filled, so zram
 * cannot drop them as trivially identical.
 *
 * Arguments (key=value, --key=value or --key value):
 *   percent=PCT   share of MemTotal to hold, 1-99 (required)
 *   rate=N        pages rewritten per second, sweeping the region (default 2000)
 *   report=TIME   report interval (default 1s); ns/us/ms/s, bare = ms
 *   ready=PATH    create PATH once the region has been touched once
 * Output: MB-MEMPRESSURE-START ..., then every report interval
 *   MB-MEMPRESSURE up=<s> held_kib=.. rss_kib=.. swap_kib=<this process>
 *     swap_used_kib=<guest> pswpin_s=.. pswpout_s=.. swapping=0|1
 * swapping=1 when pages moved to or from swap during the interval.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MB_PROG "mb-mempressure"
#include "../common/mbargs.h"

#define PAGE 4096UL

/* First number after `key` in a "key: value" or "key value" file; -1 if absent. */
static long long read_stat(const char *path, const char *key) {
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  char line[256];
  size_t kl = strlen(key);
  long long v = -1;
  while (fgets(line, sizeof line, f)) {
    if (!strncmp(line, key, kl) && (line[kl] == ':' || line[kl] == ' ')) {
      v = strtoll(line + kl + 1, NULL, 10);
      break;
    }
  }
  fclose(f);
  return v;
}

int main(int argc, char **argv) {
  long percent = 0, rate = 2000;
  uint64_t report_ns = 1000000000ULL;
  const char *ready = NULL;
  for (int i = 1; i < argc; i++) {
    char key[32];
    const char *val = mb_arg(argc, argv, &i, key, sizeof key, NULL);
    char *end;
    if (!strcmp(key, "percent")) {
      percent = strtol(val, &end, 10);
      if (*end == '%') end++;
      if (*end || percent < 1 || percent > 99) die_usage("percent must be 1-99", val);
    } else if (!strcmp(key, "rate")) {
      rate = strtol(val, &end, 10);
      if (*end || rate < 0) die_usage("bad rate", val);
    } else if (!strcmp(key, "report")) {
      double v = strtod(val, &end);
      double mul = (!*end || !strcmp(end, "ms")) ? 1e6 : !strcmp(end, "s") ? 1e9 : !strcmp(end, "us") ? 1e3 : -1;
      if (mul < 0 || v <= 0) die_usage("bad report", val);
      report_ns = (uint64_t)(v * mul);
    } else if (!strcmp(key, "ready")) ready = val;
    else die_usage("unknown option", key);
  }
  if (!percent) die_usage("percent is required", NULL);
  setvbuf(stdout, NULL, _IOLBF, 0);

  long long total_kib = read_stat("/proc/meminfo", "MemTotal");
  if (total_kib <= 0) { fprintf(stderr, "mb-mempressure: cannot read MemTotal\n"); return 1; }
  uint64_t bytes = (uint64_t)total_kib * 1024ULL * (uint64_t)percent / 100ULL;
  uint64_t pages = bytes / PAGE;
  long long swap_total = read_stat("/proc/meminfo", "SwapTotal");
  printf("MB-MEMPRESSURE-START pid=%d percent=%ld mem_total_kib=%lld held_kib=%llu swap_total_kib=%lld rate=%ld\n",
         (int)getpid(), percent, total_kib, (unsigned long long)(pages * PAGE / 1024), swap_total, rate);
  uint8_t *mem = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) { perror("mb-mempressure: mmap"); return 1; }
  uint64_t counter = 0;
  for (uint64_t p = 0; p < pages; p++) *(volatile uint64_t *)(mem + p * PAGE) = ++counter;
  if (ready) {
    int fd = open(ready, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) close(fd);
  }
  /* sweep in 10 ms steps of rate/100 pages */
  uint64_t start = now_ns(), next = start, next_report = start + report_ns, cur = 0;
  long long in0 = read_stat("/proc/vmstat", "pswpin"), out0 = read_stat("/proc/vmstat", "pswpout");
  uint64_t last_report = start;
  double acc = 0;
  for (;;) {
    acc += (double)rate / 100.0;
    uint64_t n = (uint64_t)acc;
    acc -= (double)n;
    for (uint64_t i = 0; i < n; i++) {
      *(volatile uint64_t *)(mem + cur * PAGE) = ++counter;
      if (++cur == pages) cur = 0;
    }
    next += 10000000ULL;
    uint64_t t = now_ns();
    if (t < next) {
      struct timespec ts = { .tv_sec = (time_t)(next / 1000000000ULL), .tv_nsec = (long)(next % 1000000000ULL) };
      while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {}
      t = now_ns();
    } else next = t;
    if (t >= next_report) {
      long long in = read_stat("/proc/vmstat", "pswpin"), out = read_stat("/proc/vmstat", "pswpout");
      long long st = read_stat("/proc/meminfo", "SwapTotal"), sf = read_stat("/proc/meminfo", "SwapFree");
      double dt = (double)(t - last_report) / 1e9;
      double pin = (double)(in - in0) / dt, pout = (double)(out - out0) / dt;
      printf("MB-MEMPRESSURE up=%.3f held_kib=%llu rss_kib=%lld swap_kib=%lld swap_used_kib=%lld pswpin_s=%.0f "
             "pswpout_s=%.0f swapping=%d\n",
             (double)(t - start) / 1e9, (unsigned long long)(pages * PAGE / 1024), read_stat("/proc/self/status", "VmRSS"),
             read_stat("/proc/self/status", "VmSwap"), st >= 0 && sf >= 0 ? st - sf : -1, pin, pout, (in != in0 || out != out0));
      in0 = in; out0 = out; last_report = t;
      while (next_report <= t) next_report += report_ns;
    }
  }
}
