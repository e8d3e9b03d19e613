/*
 * mb-stress: memory workers like `stress --vm N --vm-bytes B` (mVM ran 1000
 * threads x 10 KiB and x 70 KiB). Each worker, in a loop: allocates B bytes,
 * writes one byte every STRIDE bytes, optionally sleeps HANG, frees (unless
 * KEEP: then it keeps the block and rewrites it). Workers are threads with
 * small stacks, so 1000 of them fit in a small guest (stress forks
 * processes, whose per-process overhead would not).
 *
 * Arguments (key=value, --key=value or --key value):
 *   vm=N          workers (default 1, max 4096)
 *   vm_bytes=SIZE bytes per worker (default 256M, like stress); K/M/G
 *   vm_stride=N   touch one byte every N bytes (default 4096)
 *   vm_hang=TIME  sleep this long before freeing (default 0); ns/us/ms/s
 *   vm_keep       redirty the same block instead of free + allocate again
 *   report=TIME   report interval (default 1s)
 *   ready=PATH    create PATH once every worker has touched its block once
 * Output: MB-STRESS-START ..., then every report interval
 *   MB-STRESS up=<s> rounds_s=<blocks written per s> mib_s=<touched MiB/s> workers=N
 * Exit code 2 on bad arguments.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MB_PROG "mb-stress"
#include "../common/mbargs.h"

static uint64_t vm_bytes = 256ULL << 20, vm_stride = 4096, hang_ns = 0;
static int keep = 0;
static atomic_uint_fast64_t rounds, touched, started;

static void nap(uint64_t ns) {
  struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000ULL), .tv_nsec = (long)(ns % 1000000000ULL) };
  while (nanosleep(&ts, &ts) == EINTR) {}
}

/* workers wait here until all exist: 1000 spinning threads would otherwise
   starve the thread creating the rest */
static pthread_mutex_t go_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t go_cond = PTHREAD_COND_INITIALIZER;
static int go;

static void *worker(void *arg) {
  (void)arg;
  pthread_mutex_lock(&go_lock);
  while (!go) pthread_cond_wait(&go_cond, &go_lock);
  pthread_mutex_unlock(&go_lock);
  uint8_t v = 0;
  char *buf = NULL;
  int first = 1;
  for (;;) {
    if (!buf) {
      buf = malloc(vm_bytes);
      if (!buf) { nap(100000000ULL); continue; } /* out of memory: retry, as stress does not give up either */
    }
    v++;
    for (uint64_t i = 0; i < vm_bytes; i += vm_stride) buf[i] = (char)(v ? v : 1);
    atomic_fetch_add(&rounds, 1);
    atomic_fetch_add(&touched, vm_bytes);
    if (first) { atomic_fetch_add(&started, 1); first = 0; }
    if (hang_ns) nap(hang_ns);
    if (!keep) { free(buf); buf = NULL; }
    else if (!hang_ns) sched_yield();
  }
  return NULL;
}

int main(int argc, char **argv) {
  long workers = 1;
  uint64_t report_ns = 1000000000ULL;
  const char *ready = NULL;
  for (int i = 1; i < argc; i++) {
    static const char *const flags[] = {"vm_keep", NULL};
    char key[32];
    const char *val = mb_arg(argc, argv, &i, key, sizeof key, flags);
    if (!strcmp(key, "vm_keep")) { keep = 1; continue; }
    char *end;
    if (!strcmp(key, "vm")) {
      workers = strtol(val, &end, 10);
      if (*end || workers < 1 || workers > 4096) die_usage("vm must be 1-4096", val);
    } else if (!strcmp(key, "vm_bytes")) {
      if (parse_size(val, &vm_bytes) || vm_bytes == 0) die_usage("bad vm_bytes", val);
    } else if (!strcmp(key, "vm_stride")) {
      vm_stride = strtoull(val, &end, 10);
      if (*end || vm_stride == 0) die_usage("bad vm_stride", val);
    } else if (!strcmp(key, "vm_hang")) {
      if (parse_time_ns(val, &hang_ns)) die_usage("bad vm_hang", val);
    } else if (!strcmp(key, "report")) {
      if (parse_time_ns(val, &report_ns) || report_ns == 0) die_usage("bad report", val);
    } else if (!strcmp(key, "ready")) ready = val;
    else die_usage("unknown option", key);
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  printf("MB-STRESS-START pid=%d vm=%ld vm_bytes=%llu vm_stride=%llu vm_hang_us=%llu vm_keep=%d\n", (int)getpid(), workers,
         (unsigned long long)vm_bytes, (unsigned long long)vm_stride, (unsigned long long)(hang_ns / 1000), keep);
  /* the kernel's default thread limit scales with RAM (about 900 in a
     128 MiB guest); we run as root in the guest, so raise it for the workers */
  FILE *tm = fopen("/proc/sys/kernel/threads-max", "r+");
  if (tm) {
    long cur = 0;
    if (fscanf(tm, "%ld", &cur) == 1 && cur < workers + 256) {
      rewind(tm);
      fprintf(tm, "%ld\n", workers + 256);
    }
    fclose(tm);
  }
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  for (long w = 0; w < workers; w++) {
    pthread_t th;
    if (pthread_create(&th, &attr, worker, NULL) != 0) { perror("mb-stress: pthread_create"); return 1; }
    pthread_detach(th);
  }
  pthread_mutex_lock(&go_lock);
  go = 1;
  pthread_cond_broadcast(&go_cond);
  pthread_mutex_unlock(&go_lock);
  while ((long)atomic_load(&started) < workers) nap(10000000ULL);
  if (ready) {
    int fd = open(ready, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) close(fd);
  }
  uint64_t start = now_ns(), last = start, last_r = atomic_load(&rounds), last_b = atomic_load(&touched);
  for (;;) {
    nap(report_ns);
    uint64_t t = now_ns(), r = atomic_load(&rounds), b = atomic_load(&touched);
    double dt = (double)(t - last) / 1e9;
    printf("MB-STRESS up=%.3f rounds_s=%.0f mib_s=%.2f workers=%ld\n", (double)(t - start) / 1e9, (double)(r - last_r) / dt,
           (double)(b - last_b) / dt / 1048576.0, workers);
    last = t; last_r = r; last_b = b;
  }
}
