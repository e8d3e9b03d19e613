/*
 * mb-probe: a fixed-rate ICMP echo probe for observing migration downtime.
 *
 *   mb-probe --target IP [--interval 10ms] [--duration 30s] [--timeout 1s]
 *            [--rt] [--id N] [--size BYTES]
 *
 * One JSON line per probe on stdout, written when the reply arrives or when
 * the probe times out, and flushed at least every 10 ms (per line at 10 ms
 * intervals; at 1 ms one write per 10 lines keeps the probe's own CPU low):
 *   {"seq":N,"sent_us":T,"recv_us":T|null}
 * Both times are CLOCK_REALTIME epoch microseconds: sent_us is read right
 * before sendto(), recv_us is the kernel's receive timestamp of the reply.
 * Lines are not necessarily in seq order (a reply can overtake a timeout).
 * seq counts probes actually sent (0, 1, 2, ...). A final summary JSON line
 * goes to stderr, with the probe's own CPU time (getrusage, both threads) so
 * a run can show what probing cost.
 *
 * Sending runs in its own thread on absolute deadlines (clock_nanosleep with
 * TIMER_ABSTIME on CLOCK_MONOTONIC), so the rate does not drift. If the
 * thread wakes more than one interval late (CPU starved) the missed slots are
 * skipped, not sent in a burst, and counted in the summary as skipped_slots.
 * --rt makes the process SCHED_FIFO and mlockall()s it, which is what it
 * takes to really send 100 probes/s on a loaded 2-core machine.
 *
 * Uses a raw ICMP socket (root) and falls back to an unprivileged ICMP
 * datagram ("ping") socket. Replies are matched by ICMP id, 16-bit sequence
 * and a 64-bit sequence in the payload; other ICMP traffic is ignored.
 *
 * Without --duration it runs until SIGTERM/SIGINT; then it stops sending,
 * waits (at most --timeout) for the outstanding replies and exits 0. A second
 * signal reports the outstanding probes as lost at once.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <linux/filter.h>
#include <time.h>
#include <unistd.h>
#include "common.h"

#define RING 65536 /* one slot per 16-bit ICMP sequence number */
#define MAGIC 0x6d622d70726f6265ULL /* "mb-probe" */
#define FLUSH_NS 10000000LL /* stdout is flushed at least this often */

/* ---------- shared state ---------- */

enum { FREE = 0, WAITING = 1 };

struct slot {
  uint64_t seq;
  int64_t sent_us;   /* CLOCK_REALTIME */
  int64_t sent_mono; /* CLOCK_MONOTONIC, for the timeout */
  int state;
};

static struct slot ring[RING];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t next_seq = 0;   /* probes sent so far (guarded by mu) */
static uint64_t oldest = 0;     /* first seq not yet reported (receiver only) */
static volatile int sender_done = 0;
static volatile sig_atomic_t stop_count = 0;
static uint64_t skipped_slots = 0, send_errors = 0, received = 0, lost = 0, late = 0;

static int fd = -1, raw = 0;
static uint16_t probe_id;
static struct sockaddr_in target;
static int64_t interval_ns = 10000000, duration_ns = 0, timeout_ns = 1000000000;
static size_t payload_len = 56;

static void on_stop(int s) { (void)s; stop_count++; }

static uint16_t checksum(const void *p, size_t n) {
  const uint8_t *b = p;
  uint32_t sum = 0;
  for (; n > 1; n -= 2, b += 2) sum += (uint32_t)(b[0] << 8 | b[1]);
  if (n) sum += (uint32_t)(b[0] << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return htons((uint16_t)~sum);
}

/* ---------- sender ---------- */

static void send_probe(void) {
  unsigned char pkt[8 + 65536];
  size_t len = 8 + payload_len;
  memset(pkt, 0, len);
  struct icmphdr *h = (struct icmphdr *)pkt;
  h->type = ICMP_ECHO;
  h->un.echo.id = htons(probe_id);

  pthread_mutex_lock(&mu);
  uint64_t seq = next_seq;
  struct slot *s = &ring[seq % RING];
  /* A slot still waiting 65536 probes later cannot happen: timeout < RING/2 intervals. */
  s->seq = seq;
  s->state = WAITING;
  h->un.echo.sequence = htons((uint16_t)seq);
  if (payload_len >= 16) {
    uint64_t m = MAGIC;
    memcpy(pkt + 8, &m, 8);
    memcpy(pkt + 16, &seq, 8);
  }
  h->checksum = checksum(pkt, len);
  s->sent_mono = now_ns(CLOCK_MONOTONIC);
  s->sent_us = now_ns(CLOCK_REALTIME) / 1000;
  next_seq = seq + 1;
  pthread_mutex_unlock(&mu);

  if (sendto(fd, pkt, len, 0, (struct sockaddr *)&target, sizeof target) < 0)
    send_errors++; /* e.g. EHOSTUNREACH while the route is gone: it is a lost probe */
}

static void *sender(void *arg) {
  (void)arg;
  int64_t start = now_ns(CLOCK_MONOTONIC);
  for (uint64_t k = 0;; k++) {
    int64_t t = start + (int64_t)k * interval_ns;
    if (duration_ns > 0 && t - start >= duration_ns) break;
    struct timespec ts = {t / 1000000000LL, t % 1000000000LL};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR && !stop_count) {}
    if (stop_count) break;
    int64_t lateness = now_ns(CLOCK_MONOTONIC) - t;
    if (lateness >= interval_ns) { /* starved: skip missed slots instead of bursting */
      uint64_t skip = (uint64_t)(lateness / interval_ns);
      k += skip;
      skipped_slots += skip;
      if (duration_ns > 0 && (int64_t)k * interval_ns >= duration_ns) break;
    }
    send_probe();
  }
  sender_done = 1;
  return NULL;
}

/* ---------- receiver ---------- */

static int unflushed = 0;
static int64_t last_flush = 0;

static void emit(uint64_t seq, int64_t sent_us, int64_t recv_us) {
  if (recv_us >= 0)
    printf("{\"seq\":%llu,\"sent_us\":%lld,\"recv_us\":%lld}\n", (unsigned long long)seq, (long long)sent_us,
           (long long)recv_us);
  else
    printf("{\"seq\":%llu,\"sent_us\":%lld,\"recv_us\":null}\n", (unsigned long long)seq, (long long)sent_us);
  unflushed++;
}

/* Flushes stdout when lines wait and the last flush is FLUSH_NS old (or force). */
static void flush_out(int force) {
  int64_t now = now_ns(CLOCK_MONOTONIC);
  if (unflushed && (force || now - last_flush >= FLUSH_NS)) {
    fflush(stdout);
    unflushed = 0;
    last_flush = now;
  }
}

static void handle_reply(const unsigned char *buf, ssize_t n, int64_t recv_us) {
  const unsigned char *p = buf;
  if (raw) { /* raw sockets include the IP header */
    if (n < (ssize_t)sizeof(struct iphdr)) return;
    size_t ihl = (size_t)(((const struct iphdr *)buf)->ihl) * 4;
    if ((ssize_t)ihl + 8 > n) return;
    p += ihl;
    n -= (ssize_t)ihl;
  }
  if (n < 8) return;
  const struct icmphdr *h = (const struct icmphdr *)p;
  if (h->type != ICMP_ECHOREPLY) return;
  if (raw && ntohs(h->un.echo.id) != probe_id) return; /* ping sockets filter by id themselves */
  uint16_t seq16 = ntohs(h->un.echo.sequence);

  pthread_mutex_lock(&mu);
  struct slot *s = &ring[seq16];
  int ok = s->state == WAITING && (uint16_t)s->seq == seq16;
  if (ok && payload_len >= 16 && n >= 24) {
    uint64_t m, full;
    memcpy(&m, p + 8, 8);
    memcpy(&full, p + 16, 8);
    ok = m == MAGIC && full == s->seq;
  }
  uint64_t seq = s->seq;
  int64_t sent_us = s->sent_us;
  if (ok) s->state = FREE;
  pthread_mutex_unlock(&mu);
  if (ok) {
    received++;
    emit(seq, sent_us, recv_us);
  } else if (s->state == FREE && (uint16_t)s->seq == seq16) {
    late++; /* already reported lost, or a duplicate */
  }
}

static void drain_socket(void) {
  for (;;) {
    unsigned char buf[70000];
    char ctrl[CMSG_SPACE(sizeof(struct timespec))];
    struct iovec iov = {buf, sizeof buf};
    struct msghdr mh = {0};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = ctrl;
    mh.msg_controllen = sizeof ctrl;
    ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT);
    if (n < 0) return; /* EAGAIN, or an ICMP error queued on a ping socket */
    int64_t recv_us = now_ns(CLOCK_REALTIME) / 1000;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
        struct timespec ts;
        memcpy(&ts, CMSG_DATA(c), sizeof ts);
        recv_us = (int64_t)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
      }
    handle_reply(buf, n, recv_us);
  }
}

/* Reports timed-out probes (all, if force) in seq order; returns 1 when
 * everything sent has been reported. */
static int expire(int force) {
  int64_t now = now_ns(CLOCK_MONOTONIC);
  for (;;) {
    pthread_mutex_lock(&mu);
    uint64_t sent = next_seq;
    if (oldest >= sent) { pthread_mutex_unlock(&mu); return 1; }
    struct slot *s = &ring[oldest % RING];
    if (s->seq != oldest) { pthread_mutex_unlock(&mu); oldest++; continue; } /* cannot happen */
    if (s->state == WAITING && (force || now - s->sent_mono >= timeout_ns)) {
      s->state = FREE;
      uint64_t seq = s->seq;
      int64_t sent_us = s->sent_us;
      pthread_mutex_unlock(&mu);
      lost++;
      emit(seq, sent_us, -1);
      oldest++;
      continue;
    }
    int waiting = s->state == WAITING;
    pthread_mutex_unlock(&mu);
    if (waiting) return 0;
    oldest++; /* answered already */
  }
}

/*
 * A raw ICMP socket sees every ICMP packet of the namespace: with one probe per
 * guest, each would wake for (and parse) every other probe's replies. This
 * classic BPF filter keeps only echo replies carrying our id, in the kernel.
 */
static void filter_replies(void) {
  struct sock_filter code[] = {
      BPF_STMT(BPF_LDX | BPF_B | BPF_MSH, 0),            /* X = IP header length */
      BPF_STMT(BPF_LD | BPF_B | BPF_IND, 0),             /* A = ICMP type */
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ICMP_ECHOREPLY, 0, 3),
      BPF_STMT(BPF_LD | BPF_H | BPF_IND, 4),             /* A = ICMP echo id */
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, probe_id, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, 0xffff),
      BPF_STMT(BPF_RET | BPF_K, 0),
  };
  struct sock_fprog prog = {.len = sizeof code / sizeof code[0], .filter = code};
  /* without the filter replies are still matched in user space: only slower */
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) < 0)
    fprintf(stderr, "mb-probe: no socket filter (%s); filtering replies in user space\n", strerror(errno));
}

static void open_socket(void) {
  fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
  if (fd >= 0) {
    raw = 1;
    filter_replies();
  }
  else {
    fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_ICMP);
    if (fd < 0)
      die("cannot open an ICMP socket: run as root, or allow ping sockets with "
          "sysctl net.ipv4.ping_group_range='0 2147483647'");
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
  int buf = 4 << 20;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof buf) < 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
}

int main(int argc, char **argv) {
  prog = "mb-probe";
  const char *tgt = NULL;
  int rt = 0;
  long id = -1;
  for (int i = 1; i < argc; i++) {
    const char *o = argv[i];
    if (strcmp(o, "--rt") == 0) { rt = 1; continue; }
    if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0) {
      fprintf(stderr, "usage: %s --target IP [--interval 10ms] [--duration 30s] [--timeout 1s] [--rt] [--id N] [--size BYTES]\n", prog);
      return 2;
    }
    if (i + 1 >= argc) die("option %s needs a value", o);
    const char *v = argv[++i];
    if (strcmp(o, "--target") == 0) tgt = v;
    else if (strcmp(o, "--interval") == 0) interval_ns = parse_duration_ns(o, v);
    else if (strcmp(o, "--duration") == 0) duration_ns = parse_duration_ns(o, v);
    else if (strcmp(o, "--timeout") == 0) timeout_ns = parse_duration_ns(o, v);
    else if (strcmp(o, "--id") == 0) {
      char *end;
      id = strtol(v, &end, 0);
      if (end == v || *end || id < 0 || id > 65535) die("--id: '%s' must be an integer 0..65535", v);
    } else if (strcmp(o, "--size") == 0) {
      char *end;
      long sz = strtol(v, &end, 0);
      if (end == v || *end || sz < 16 || sz > 65000) die("--size: '%s' must be a payload size 16..65000 bytes", v);
      payload_len = (size_t)sz;
    } else die("unknown option '%s' (see --help)", o);
  }
  if (!tgt) die("--target IP is required");
  memset(&target, 0, sizeof target);
  target.sin_family = AF_INET;
  if (inet_pton(AF_INET, tgt, &target.sin_addr) != 1) die("--target: '%s' is not an IPv4 address", tgt);
  if (interval_ns < 100000) die("--interval must be at least 100us");
  if (timeout_ns < interval_ns) timeout_ns = interval_ns;
  if (timeout_ns / interval_ns >= RING / 2) die("--timeout must be shorter than %d intervals", RING / 2);
  probe_id = (uint16_t)(id >= 0 ? id : (getpid() & 0xffff));

  open_socket();

  if (rt) {
    struct sched_param sp = {.sched_priority = 50};
    if (sched_setscheduler(0, SCHED_FIFO, &sp) < 0)
      die("--rt: cannot switch to SCHED_FIFO: %s (run as root / with CAP_SYS_NICE)", strerror(errno));
    if (mlockall(MCL_CURRENT | MCL_FUTURE) < 0)
      die("--rt: mlockall failed: %s (raise RLIMIT_MEMLOCK or run as root)", strerror(errno));
  }
  prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);

  struct sigaction sa = {0};
  sa.sa_handler = on_stop;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  pthread_t th;
  int e = pthread_create(&th, NULL, sender, NULL); /* inherits SCHED_FIFO */
  if (e) die("cannot start the sender thread: %s", strerror(e));

  int64_t stop_seen_mono = 0;
  for (;;) {
    int done_sending = sender_done;
    if (stop_count && !stop_seen_mono) stop_seen_mono = now_ns(CLOCK_MONOTONIC);
    int force = stop_count >= 2 ||
                (stop_seen_mono && now_ns(CLOCK_MONOTONIC) - stop_seen_mono > timeout_ns + interval_ns);
    if (expire(force) && (done_sending || force)) break;
    flush_out(0);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    /* replies wake the poll; the timeout only paces timeouts, the stop check and flushing */
    int wait_ms = (int)(interval_ns / 1000000);
    if (wait_ms < 1) wait_ms = 1;
    if (wait_ms > 50) wait_ms = 50;
    if (unflushed) {
      int64_t left = (FLUSH_NS - (now_ns(CLOCK_MONOTONIC) - last_flush)) / 1000000;
      if (left < wait_ms) wait_ms = left < 1 ? 1 : (int)left;
    }
    int r = poll(&p, 1, wait_ms);
    if (r > 0) drain_socket();
  }
  pthread_join(th, NULL);
  expire(1);
  flush_out(1);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru); /* both threads */
  long long user_us = (long long)ru.ru_utime.tv_sec * 1000000LL + ru.ru_utime.tv_usec;
  long long sys_us = (long long)ru.ru_stime.tv_sec * 1000000LL + ru.ru_stime.tv_usec;
  fprintf(stderr,
          "{\"event\":\"summary\",\"sent\":%llu,\"received\":%llu,\"lost\":%llu,\"late_replies\":%llu,"
          "\"skipped_slots\":%llu,\"send_errors\":%llu,\"raw_socket\":%s,\"rt\":%s,\"cpu_user_us\":%lld,"
          "\"cpu_sys_us\":%lld}\n",
          (unsigned long long)next_seq, (unsigned long long)received, (unsigned long long)lost,
          (unsigned long long)late, (unsigned long long)skipped_slots, (unsigned long long)send_errors,
          raw ? "true" : "false", rt ? "true" : "false", user_us, sys_us);
  return 0;
}
