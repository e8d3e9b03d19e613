/*
 * mb-trace: distinct pages a set of processes dirties over windows of given
 * lengths, from the kernel's soft-dirty bits: write "4" to
 * /proc/<pid>/clear_refs, wait one window, count pagemap entries with bit 55
 * set. Gives the curve D(t) (dirtied memory over a growing window) that the
 * hot/cold fit of mVM needs. Needs CONFIG_MEM_SOFT_DIRTY (the Debian kernel
 * has it).
 *
 * Arguments (key=value, --key=value or --key value):
 *   pid=PID|all   process to trace, with all its descendants (default: the
 *                 workload, from /run/mb-workload.pid); all = every process
 *   windows=LIST  window lengths separated by ':' (default
 *                 10ms:20ms:50ms:100ms:200ms:500ms:1s:2s:5s:10s)
 *   reps=N        times to run the whole list (default 1)
 *   delay=TIME    wait before the first window (default 0)
 *   out=PATH      where to print (default stdout; the guest uses /dev/console)
 * Output, one line per window:
 *   MB-TRACE pid=<root> rep=<r> target_s=<asked> window_s=<measured>
 *            dirtied_pages=<n> dirtied_mib=<n*4KiB> procs=<traced>
 * then MB-TRACE-DONE windows=<lines printed>. Exit code 2 on bad arguments.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <signal.h>
#include <unistd.h>

#define MB_PROG "mb-trace"
#include "../common/mbargs.h"

#define MAXW 64
#define MAXP 4096
#define SOFT_DIRTY (1ULL << 55)

static int ppid_of(int pid) {
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  int fd = open(path, O_RDONLY);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = 0;
  char *p = strrchr(buf, ')'); /* comm may contain spaces */
  if (!p) return -1;
  int ppid;
  char state;
  if (sscanf(p + 1, " %c %d", &state, &ppid) != 2) return -1;
  return ppid;
}

/* root and its descendants (root < 0: every process except us); returns count */
static int collect(int root, int *out) {
  int pids[MAXP], ppids[MAXP], n = 0;
  DIR *d = opendir("/proc");
  if (!d) return 0;
  struct dirent *e;
  while ((e = readdir(d)) && n < MAXP) {
    if (!isdigit((unsigned char)e->d_name[0])) continue;
    int pid = atoi(e->d_name);
    int pp = ppid_of(pid);
    if (pp < 0) continue;
    pids[n] = pid;
    ppids[n] = pp;
    n++;
  }
  closedir(d);
  int self = getpid(), m = 0;
  if (root < 0) {
    for (int i = 0; i < n; i++) if (pids[i] != self && pids[i] != 1) out[m++] = pids[i];
    return m;
  }
  out[m++] = root;
  for (int k = 0; k < m; k++) /* breadth-first over the process tree */
    for (int i = 0; i < n && m < MAXP; i++) if (ppids[i] == out[k]) out[m++] = pids[i];
  return m;
}

static void clear_refs(int pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/clear_refs", pid);
  int fd = open(path, O_WRONLY);
  if (fd < 0) return; /* exited, or a kernel thread */
  if (write(fd, "4", 1) != 1) { /* ignore: process gone */ }
  close(fd);
}

static uint64_t entries[8192];

/* soft-dirty pages of one process, over all its mappings */
static uint64_t count_dirty(int pid) {
  char path[64], line[512];
  snprintf(path, sizeof path, "/proc/%d/maps", pid);
  FILE *maps = fopen(path, "r");
  if (!maps) return 0;
  snprintf(path, sizeof path, "/proc/%d/pagemap", pid);
  int pm = open(path, O_RDONLY);
  if (pm < 0) { fclose(maps); return 0; }
  uint64_t dirty = 0;
  while (fgets(line, sizeof line, maps)) {
    unsigned long lo, hi;
    if (sscanf(line, "%lx-%lx", &lo, &hi) != 2) continue;
    if (strstr(line, "[vsyscall]")) continue;
    for (uint64_t pg = lo / 4096; pg < hi / 4096;) {
      uint64_t want = hi / 4096 - pg;
      if (want > sizeof entries / 8) want = sizeof entries / 8;
      ssize_t n = pread(pm, entries, want * 8, (off_t)(pg * 8));
      if (n <= 0) break;
      for (ssize_t i = 0; i < n / 8; i++) if (entries[i] & SOFT_DIRTY) dirty++;
      pg += (uint64_t)n / 8;
    }
  }
  close(pm);
  fclose(maps);
  return dirty;
}

static int read_pidfile(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  int pid = -1;
  if (fscanf(f, "%d", &pid) != 1) pid = -1;
  fclose(f);
  return pid;
}

int main(int argc, char **argv) {
  uint64_t windows[MAXW];
  int nw = 0, reps = 1, root = 0;
  uint64_t delay_ns = 0;
  const char *wl = "10ms:20ms:50ms:100ms:200ms:500ms:1s:2s:5s:10s", *out = NULL;
  for (int i = 1; i < argc; i++) {
    char key[32];
    const char *val = mb_arg(argc, argv, &i, key, sizeof key, NULL);
    char *end;
    if (!strcmp(key, "pid")) {
      if (!strcmp(val, "all")) root = -1;
      else {
        root = (int)strtol(val, &end, 10);
        if (*end || root < 1) die_usage("bad pid", val);
      }
    } else if (!strcmp(key, "windows")) wl = val;
    else if (!strcmp(key, "reps")) {
      reps = (int)strtol(val, &end, 10);
      if (*end || reps < 1) die_usage("bad reps", val);
    } else if (!strcmp(key, "delay")) {
      if (parse_time_ns(val, &delay_ns)) die_usage("bad delay", val);
    } else if (!strcmp(key, "out")) out = val;
    else die_usage("unknown option", key);
  }
  char buf[1024];
  snprintf(buf, sizeof buf, "%s", wl);
  for (char *tok = strtok(buf, ":"); tok; tok = strtok(NULL, ":")) {
    if (nw == MAXW) die_usage("too many windows", wl);
    if (parse_time_ns(tok, &windows[nw]) || windows[nw] == 0) die_usage("bad window", tok);
    nw++;
  }
  if (nw == 0) die_usage("no windows", wl);
  if (out && !freopen(out, "w", stdout)) { perror("mb-trace: out"); return 1; }
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (root == 0) {
    root = read_pidfile("/run/mb-workload.pid");
    if (root < 1) { fprintf(stderr, "mb-trace: no pid given and no workload running (/run/mb-workload.pid)\n"); return 2; }
  }
  if (root > 0 && kill(root, 0) != 0) { fprintf(stderr, "mb-trace: process %d does not exist\n", root); return 2; }
  if (delay_ns) {
    struct timespec ts = { .tv_sec = (time_t)(delay_ns / 1000000000ULL), .tv_nsec = (long)(delay_ns % 1000000000ULL) };
    nanosleep(&ts, NULL);
  }
  static int procs[MAXP];
  int lines = 0;
  for (int r = 0; r < reps; r++) {
    for (int w = 0; w < nw; w++) {
      int np = collect(root, procs);
      for (int i = 0; i < np; i++) clear_refs(procs[i]);
      uint64_t t0 = now_ns(), until = t0 + windows[w];
      struct timespec ts = { .tv_sec = (time_t)(until / 1000000000ULL), .tv_nsec = (long)(until % 1000000000ULL) };
      while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {}
      uint64_t t1 = now_ns(), dirty = 0;
      for (int i = 0; i < np; i++) dirty += count_dirty(procs[i]);
      printf("MB-TRACE pid=%d rep=%d target_s=%.4f window_s=%.4f dirtied_pages=%llu dirtied_mib=%.3f procs=%d\n", root, r,
             (double)windows[w] / 1e9, (double)(t1 - t0) / 1e9, (unsigned long long)dirty, (double)dirty * 4096.0 / 1048576.0, np);
      lines++;
    }
  }
  printf("MB-TRACE-DONE windows=%d\n", lines);
  return 0;
}
