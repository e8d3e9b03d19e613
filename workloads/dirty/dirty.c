/*
 * mb-dirty: dirty-page generator (Salfner et al.'s WSET/PERIOD/BPC/FILL
 * parameters, plus a hot/cold mode for mVM's two-phase dirtied-memory curve).
 *
 * Memory is WSET bytes, split into blocks of 4 KiB pages. Every PERIOD the
 * program writes BPC blocks (round robin over the cold region), writing FILL
 * percent of each block (at least one 8-byte word, so every block written
 * counts as dirtied). With HOT > 0 the first HOT bytes are the hot set, which
 * is rewritten completely once every HOTPERIOD (spread evenly over the
 * cycles), and BPC applies to the rest (the cold region). Written words take
 * a changing counter value, so content-based samplers see every write.
 *
 * Arguments, each as key=value, --key=value or --key value:
 *   wset=SIZE       working set (required), e.g. 64M, 16K, 1G, 4096
 *   period=TIME     cycle length (default 10ms); bare numbers are ms
 *   bpc=N           cold blocks written per cycle (default 64)
 *   fill=PCT        percent of each block written, 0-100 (default 100)
 *   hot=SIZE        hot set size, <= wset (default 0: no hot set)
 *   hotperiod=TIME  time to rewrite the whole hot set once (default 1s)
 *   report=TIME     report interval (default 1s)
 *   duration=TIME   stop after this long (default 0: run until killed)
 *   ready=PATH      create PATH once the working set has been touched
 *   mlock           lock the working set in RAM
 * Sizes take K/M/G (binary) with optional "iB"/"B"; times take ns/us/ms/s.
 *
 * Output (stdout, one line each, space-separated key=value):
 *   MB-DIRTY-START pid=.. wset_pages=.. hot_pages=.. ... target_pages_s=..
 *   MB-DIRTY up=<s> pages_s=<achieved> mib_s=<achieved> target_pages_s=..
 *            hot_pages_s=.. cold_pages_s=.. late=<cycles skipped> cycles=..
 * Exit code 2 on bad arguments.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MB_PROG "mb-dirty"
#include "../common/mbargs.h"

#define BLOCK 4096UL
#define WORDS_PER_BLOCK (BLOCK / sizeof(uint64_t))

struct opts {
  uint64_t wset, hot;
  uint64_t period_ns, hotperiod_ns, report_ns, duration_ns;
  uint64_t bpc;
  int fill;
  int mlock;
  const char *ready;
};

static void parse_kv(struct opts *o, const char *key, const char *val) {
  int bad = 0;
  if (!strcmp(key, "mlock")) { o->mlock = 1; return; }
  if (!val) die_usage("missing value for", key);
  if (!strcmp(key, "wset")) bad = parse_size(val, &o->wset);
  else if (!strcmp(key, "hot")) bad = parse_size(val, &o->hot);
  else if (!strcmp(key, "period")) bad = parse_time_ns(val, &o->period_ns);
  else if (!strcmp(key, "hotperiod")) bad = parse_time_ns(val, &o->hotperiod_ns);
  else if (!strcmp(key, "report")) bad = parse_time_ns(val, &o->report_ns);
  else if (!strcmp(key, "duration")) bad = parse_time_ns(val, &o->duration_ns);
  else if (!strcmp(key, "ready")) o->ready = val;
  else if (!strcmp(key, "bpc")) {
    char *end;
    o->bpc = strtoull(val, &end, 10);
    bad = (*end || end == val);
  } else if (!strcmp(key, "fill")) {
    char *end;
    long f = strtol(val, &end, 10);
    if (*end == '%') end++;
    bad = (*end || end == val || f < 0 || f > 100);
    o->fill = (int)f;
  } else die_usage("unknown option", key);
  if (bad) die_usage("bad value", val);
}

static void parse_args(struct opts *o, int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    char key[64];
    const char *a = argv[i];
    while (*a == '-') a++;
    const char *eq = strchr(a, '=');
    size_t kl = eq ? (size_t)(eq - a) : strlen(a);
    if (kl == 0 || kl >= sizeof key) die_usage("bad argument", argv[i]);
    memcpy(key, a, kl);
    key[kl] = 0;
    const char *val = eq ? eq + 1 : NULL;
    /* "--key value" form, except for the flag */
    if (!val && strcmp(key, "mlock") && i + 1 < argc) val = argv[++i];
    parse_kv(o, key, val);
  }
  if (o->wset < BLOCK) die_usage("wset must be at least 4K", NULL);
  if (o->hot > o->wset) die_usage("hot must not exceed wset", NULL);
  if (o->period_ns == 0) die_usage("period must be > 0", NULL);
  if (o->hot && o->hotperiod_ns == 0) die_usage("hotperiod must be > 0", NULL);
  if (o->report_ns == 0) die_usage("report must be > 0", NULL);
}

static void sleep_until(uint64_t t) {
  struct timespec ts = { .tv_sec = (time_t)(t / 1000000000ULL), .tv_nsec = (long)(t % 1000000000ULL) };
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {}
}

static uint64_t counter; /* changes every cycle so rewritten pages differ */

static void write_block(volatile uint64_t *block, size_t words) {
  uint64_t v = ++counter;
  for (size_t w = 0; w < words; w++) block[w] = v;
}

int main(int argc, char **argv) {
  struct opts o = { .period_ns = 10000000ULL, .hotperiod_ns = 1000000000ULL,
                    .report_ns = 1000000000ULL, .bpc = 64, .fill = 100 };
  parse_args(&o, argc, argv);
  setvbuf(stdout, NULL, _IOLBF, 0);

  uint64_t pages = o.wset / BLOCK, hot_pages = o.hot / BLOCK;
  uint64_t cold_pages = pages - hot_pages;
  size_t words = (WORDS_PER_BLOCK * (size_t)o.fill + 99) / 100;
  if (words == 0) words = 1;

  uint8_t *mem = mmap(NULL, pages * BLOCK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) { perror("mb-dirty: mmap"); return 1; }
  if (o.mlock && mlock(mem, pages * BLOCK) != 0) { perror("mb-dirty: mlock"); return 1; }
  /* touch everything once, so the guest really uses the working set */
  for (uint64_t p = 0; p < pages; p++) write_block((volatile uint64_t *)(mem + p * BLOCK), 1);

  double period_s = (double)o.period_ns / 1e9;
  uint64_t cold_per_cycle = cold_pages ? o.bpc : 0;
  double hot_per_cycle = hot_pages ? (double)hot_pages * (double)o.period_ns / (double)o.hotperiod_ns : 0;
  double target = ((double)cold_per_cycle + hot_per_cycle) / period_s;

  printf("MB-DIRTY-START pid=%d wset_pages=%llu hot_pages=%llu cold_pages=%llu period_us=%llu bpc=%llu "
         "fill=%d words_per_block=%zu hotperiod_us=%llu mlock=%d target_pages_s=%.0f\n",
         (int)getpid(), (unsigned long long)pages, (unsigned long long)hot_pages, (unsigned long long)cold_pages,
         (unsigned long long)(o.period_ns / 1000), (unsigned long long)o.bpc, o.fill, words,
         (unsigned long long)(o.hotperiod_ns / 1000), o.mlock, target);
  if (o.ready) {
    int fd = open(o.ready, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) { perror("mb-dirty: ready file"); return 1; }
    close(fd);
  }

  uint64_t start = now_ns(), next = start, next_report = start + o.report_ns, report_start = start;
  uint64_t cold_cur = 0, hot_cur = 0, cycles = 0, late = 0;
  uint64_t hot_written = 0, cold_written = 0;
  double hot_acc = 0;
  for (;;) {
    for (uint64_t i = 0; i < cold_per_cycle; i++) {
      write_block((volatile uint64_t *)(mem + (hot_pages + cold_cur) * BLOCK), words);
      if (++cold_cur == cold_pages) cold_cur = 0;
    }
    hot_acc += hot_per_cycle;
    uint64_t nhot = (uint64_t)hot_acc;
    hot_acc -= (double)nhot;
    for (uint64_t i = 0; i < nhot; i++) {
      write_block((volatile uint64_t *)(mem + hot_cur * BLOCK), words);
      if (++hot_cur == hot_pages) hot_cur = 0;
    }
    cold_written += cold_per_cycle;
    hot_written += nhot;
    cycles++;

    next += o.period_ns;
    uint64_t t = now_ns();
    if (t > next + o.period_ns) {
      /* too far behind: drop the missed cycles instead of bursting; the
         achieved rate in the report shows the shortfall */
      late += (t - next) / o.period_ns;
      next = t;
    } else if (t < next) {
      sleep_until(next);
      t = now_ns();
    }
    if (t >= next_report) {
      double dt = (double)(t - report_start) / 1e9;
      double hot_s = (double)hot_written / dt, cold_s = (double)cold_written / dt;
      double pages_s = hot_s + cold_s;
      printf("MB-DIRTY up=%.3f pages_s=%.0f mib_s=%.2f target_pages_s=%.0f hot_pages_s=%.0f cold_pages_s=%.0f "
             "late=%llu cycles=%llu\n",
             (double)(t - start) / 1e9, pages_s, pages_s * BLOCK / (1024.0 * 1024.0), target, hot_s, cold_s,
             (unsigned long long)late, (unsigned long long)cycles);
      hot_written = cold_written = late = 0;
      report_start = t;
      while (next_report <= t) next_report += o.report_ns;
    }
    if (o.duration_ns && t - start >= o.duration_ns) return 0;
  }
}
