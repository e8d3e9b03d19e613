/*
 * mb-delayfwd: a delay/jitter/loss frame forwarder between two interfaces.
 *
 * The testbed kernel has no netem, so link delay is added here: every frame
 * arriving on interface A is sent out on B after delay-ab +- jitter-ab, and
 * every frame arriving on B goes out on A after delay-ba +- jitter-ba.
 *
 *   mb-delayfwd --a IF_A --b IF_B --delay-ab 50ms --delay-ba 50ms
 *               [--jitter-ab 5ms] [--jitter-ba 5ms] [--loss-ab 1%] [--loss-ba 1%]
 *               [--limit-bytes N] [--pidfile F] [--stats-interval 10s] [--seed N]
 *               [--max-wait 10ms] [--rt]
 *
 * Design:
 *  - Two AF_PACKET/SOCK_RAW sockets bound to the interfaces (ETH_P_ALL), in
 *    promiscuous mode, with PACKET_IGNORE_OUTGOING so our own sends are never
 *    read back.
 *  - PACKET_VNET_HDR on both sockets: each frame comes with its
 *    virtio_net_hdr (GSO type/size, partial-checksum offsets) and is sent with
 *    the same header, so GSO super-frames and CHECKSUM_PARTIAL frames from a
 *    veth survive forwarding without turning offloads off.
 *  - Per direction a FIFO with release time = kernel arrival time + delay +
 *    uniform jitter, clamped so a frame never leaves before the previous one
 *    (no reordering). A byte limit per queue drops (and counts) on overflow.
 *  - One thread; ppoll() sleeps until the next frame is due or a socket is
 *    readable. No busy waiting.
 *  - --max-wait drops frames that waited longer than that in the kernel socket
 *    before being read (forwarder stopped or starved): a real link does not
 *    hold a second of traffic. Off by default.
 *  - --rt runs SCHED_FIFO (mlockall'd) so the added delay stays accurate on a
 *    loaded machine; the kernel's RT throttling still bounds its CPU share.
 *  - SIGUSR1 prints counters to stderr as one JSON line; SIGTERM/SIGINT exit
 *    cleanly (final counters printed, pidfile removed).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <linux/virtio_net.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "common.h"

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

#define VNET_HDR_LEN ((int)sizeof(struct virtio_net_hdr))
/* Largest frame accepted: GSO super-frames are up to 64 KiB by default;
 * BIG TCP can raise that, so leave room. Longer frames are counted as drops. */
#define MAX_FRAME (256 * 1024)
#define BATCH 64 /* frames read per socket per wake-up, for fairness */

/* ---------- time ---------- */

/* Parses "1%", "0.5%" or a fraction "0.01". Returns a probability. */
static double parse_loss(const char *opt, const char *s) {
  char *end;
  double v = strtod(s, &end);
  if (end == s) die("%s: '%s' is not a loss rate (use e.g. 1%% or 0.01)", opt, s);
  if (strcmp(end, "%") == 0) v /= 100.0;
  else if (*end != 0) die("%s: '%s' is not a loss rate (use e.g. 1%% or 0.01)", opt, s);
  if (v < 0 || v > 1) die("%s: '%s' must be between 0%% and 100%%", opt, s);
  return v;
}

/* ---------- randomness (xorshift64*, seeded; quality is ample for jitter) ---------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rng_next(void) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 2685821657736338717ULL;
}
static double rng_unit(void) { return (double)(rng_next() >> 11) / 9007199254740992.0; } /* [0,1) */

/* ---------- queues ---------- */

struct frame {
  struct frame *next;
  int64_t release_ns; /* CLOCK_MONOTONIC */
  uint32_t len;       /* bytes in data, virtio_net_hdr included */
  unsigned char data[];
};

struct direction {
  const char *name; /* "ab" or "ba" */
  int in_fd, out_fd;
  int64_t delay_ns, jitter_ns;
  double loss;
  struct frame *head, *tail;
  uint64_t queued_bytes;
  int64_t last_release_ns;
  int blocked; /* out socket returned EAGAIN; wait for POLLOUT */
  /* counters */
  uint64_t rx_frames, rx_bytes, tx_frames, tx_bytes;
  uint64_t drop_limit, drop_loss, drop_tx, drop_trunc, drop_stale;
};

static uint64_t limit_bytes = 32ULL << 20;
/* Frames that sat in the socket longer than this before we read them (we were
 * stopped or starved) are dropped, as a switch without a huge buffer would;
 * 0 = never. */
static int64_t max_wait_ns = 0;

static void enqueue(struct direction *d, struct frame *f) {
  f->next = NULL;
  if (d->tail) d->tail->next = f;
  else d->head = f;
  d->tail = f;
  d->queued_bytes += f->len;
}

static void dequeue(struct direction *d) {
  struct frame *f = d->head;
  d->head = f->next;
  if (!d->head) d->tail = NULL;
  d->queued_bytes -= f->len;
  free(f);
}

/* ---------- sockets ---------- */

static int open_port(const char *ifname) {
  unsigned idx = if_nametoindex(ifname);
  if (idx == 0)
    die("interface '%s' not found in this network namespace (create it, or run me with 'ip netns exec NS')", ifname);
  /* protocol 0: receive nothing until bound, so no frame of another interface slips in */
  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    if (errno == EPERM || errno == EACCES) die("opening a packet socket needs root (CAP_NET_RAW); run as root");
    die("socket(AF_PACKET): %s", strerror(errno));
  }
  int one = 1;
  if (setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one) < 0)
    die("PACKET_VNET_HDR on %s: %s (kernel too old?)", ifname, strerror(errno));
  if (setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one) < 0)
    die("PACKET_IGNORE_OUTGOING on %s: %s (needs Linux >= 4.20)", ifname, strerror(errno));
  if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one) < 0)
    die("SO_TIMESTAMPNS: %s", strerror(errno));
  /* Large buffers absorb bursts while this process waits for a CPU. */
  int buf = 16 << 20;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof buf) < 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &buf, sizeof buf) < 0)
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);

  struct sockaddr_ll sll = {0};
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_ALL);
  sll.sll_ifindex = (int)idx;
  if (bind(fd, (struct sockaddr *)&sll, sizeof sll) < 0) die("bind to %s: %s", ifname, strerror(errno));

  struct packet_mreq mr = {0};
  mr.mr_ifindex = (int)idx;
  mr.mr_type = PACKET_MR_PROMISC;
  if (setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof mr) < 0)
    die("promiscuous mode on %s: %s", ifname, strerror(errno));
  return fd;
}

/* Reads up to BATCH frames from d->in_fd into d's queue. */
static void receive(struct direction *d, unsigned char *buf) {
  for (int i = 0; i < BATCH; i++) {
    struct iovec iov = {buf, VNET_HDR_LEN + MAX_FRAME};
    char ctrl[CMSG_SPACE(sizeof(struct timespec))];
    struct msghdr mh = {0};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = ctrl;
    mh.msg_controllen = sizeof ctrl;
    ssize_t n = recvmsg(d->in_fd, &mh, MSG_TRUNC);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) return;
      if (errno == ENETDOWN) return;
      die("receive (%s): %s", d->name, strerror(errno));
    }
    int64_t mono = now_ns(CLOCK_MONOTONIC);
    if (n > VNET_HDR_LEN + MAX_FRAME) { d->drop_trunc++; continue; }
    if (n <= VNET_HDR_LEN) continue;
    d->rx_frames++;
    d->rx_bytes += (uint64_t)(n - VNET_HDR_LEN);

    /* Arrival = kernel receive timestamp mapped onto CLOCK_MONOTONIC, so time
     * this process spent waiting for a CPU still counts as link delay. */
    int64_t arrival = mono;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
        struct timespec ts;
        memcpy(&ts, CMSG_DATA(c), sizeof ts);
        int64_t age = now_ns(CLOCK_REALTIME) - ((int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec);
        if (age > 0 && age < 10000000000LL) arrival = mono - age;
      }
    }

    if (max_wait_ns > 0 && mono - arrival > max_wait_ns) { d->drop_stale++; continue; }
    if (d->loss > 0 && rng_unit() < d->loss) { d->drop_loss++; continue; }
    if (d->queued_bytes + (uint64_t)n > limit_bytes) { d->drop_limit++; continue; }

    struct frame *f = malloc(sizeof *f + (size_t)n);
    if (!f) { d->drop_limit++; continue; }
    memcpy(f->data, buf, (size_t)n);
    f->len = (uint32_t)n;
    int64_t rel = arrival + d->delay_ns;
    if (d->jitter_ns > 0) rel += (int64_t)((rng_unit() * 2.0 - 1.0) * (double)d->jitter_ns);
    if (rel < d->last_release_ns) rel = d->last_release_ns; /* never reorder */
    d->last_release_ns = rel;
    f->release_ns = rel;
    enqueue(d, f);
  }
}

/* Sends every due frame of d. */
static void release_due(struct direction *d) {
  int64_t now = now_ns(CLOCK_MONOTONIC);
  while (d->head && d->head->release_ns <= now) {
    struct frame *f = d->head;
    ssize_t n = send(d->out_fd, f->data, f->len, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN) { d->blocked = 1; return; }
      if (errno == EINTR) continue;
      d->drop_tx++; /* ENETDOWN, EINVAL (bad GSO header), EMSGSIZE ... */
    } else {
      d->tx_frames++;
      d->tx_bytes += f->len - VNET_HDR_LEN;
    }
    dequeue(d);
  }
}

/* ---------- signals, stats ---------- */

static volatile sig_atomic_t stop_sig = 0, stats_req = 0;
static void on_stop(int s) { stop_sig = s; }
static void on_usr1(int s) { (void)s; stats_req = 1; }

static void print_stats(struct direction *d, int n, const char *event) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  fprintf(stderr, "{\"event\":\"%s\",\"t_us\":%lld", event,
          (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000);
  for (int i = 0; i < n; i++) {
    fprintf(stderr,
            ",\"%s\":{\"rx_frames\":%llu,\"rx_bytes\":%llu,\"tx_frames\":%llu,\"tx_bytes\":%llu,"
            "\"queued_bytes\":%llu,\"drop_limit\":%llu,\"drop_loss\":%llu,\"drop_tx\":%llu,\"drop_trunc\":%llu,\"drop_stale\":%llu}",
            d[i].name, (unsigned long long)d[i].rx_frames, (unsigned long long)d[i].rx_bytes,
            (unsigned long long)d[i].tx_frames, (unsigned long long)d[i].tx_bytes,
            (unsigned long long)d[i].queued_bytes, (unsigned long long)d[i].drop_limit,
            (unsigned long long)d[i].drop_loss, (unsigned long long)d[i].drop_tx,
            (unsigned long long)d[i].drop_trunc, (unsigned long long)d[i].drop_stale);
  }
  fputs("}\n", stderr);
  fflush(stderr);
}

static void usage(void) {
  fprintf(stderr,
          "usage: %s --a IF_A --b IF_B [--delay-ab 50ms] [--delay-ba 50ms] [--jitter-ab 5ms] [--jitter-ba 5ms]\n"
          "       [--loss-ab 1%%] [--loss-ba 1%%] [--limit-bytes N] [--pidfile F] [--stats-interval 10s] [--seed N]\n"
          "       [--max-wait 10ms] [--rt]\n",
          prog);
  exit(2);
}

int main(int argc, char **argv) {
  prog = "mb-delayfwd";
  const char *if_a = NULL, *if_b = NULL, *pidfile = NULL;
  int64_t delay[2] = {0, 0}, jitter[2] = {0, 0}, stats_every_ns = 0;
  double loss[2] = {0, 0};
  uint64_t seed = (uint64_t)now_ns(CLOCK_REALTIME) ^ ((uint64_t)getpid() << 32);

  int rt = 0;
  for (int i = 1; i < argc; i++) {
    const char *o = argv[i];
    if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0) usage();
    if (strcmp(o, "--rt") == 0) { rt = 1; continue; }
    if (i + 1 >= argc) die("option %s needs a value", o);
    const char *v = argv[++i];
    if (strcmp(o, "--a") == 0) if_a = v;
    else if (strcmp(o, "--b") == 0) if_b = v;
    else if (strcmp(o, "--delay-ab") == 0) delay[0] = parse_duration_ns(o, v);
    else if (strcmp(o, "--delay-ba") == 0) delay[1] = parse_duration_ns(o, v);
    else if (strcmp(o, "--jitter-ab") == 0) jitter[0] = parse_duration_ns(o, v);
    else if (strcmp(o, "--jitter-ba") == 0) jitter[1] = parse_duration_ns(o, v);
    else if (strcmp(o, "--loss-ab") == 0) loss[0] = parse_loss(o, v);
    else if (strcmp(o, "--loss-ba") == 0) loss[1] = parse_loss(o, v);
    else if (strcmp(o, "--max-wait") == 0) max_wait_ns = parse_duration_ns(o, v);
    else if (strcmp(o, "--stats-interval") == 0) stats_every_ns = parse_duration_ns(o, v);
    else if (strcmp(o, "--pidfile") == 0) pidfile = v;
    else if (strcmp(o, "--seed") == 0) seed = strtoull(v, NULL, 0);
    else if (strcmp(o, "--limit-bytes") == 0) {
      char *end;
      unsigned long long l = strtoull(v, &end, 0);
      if (end == v || *end || l < 65536) die("--limit-bytes: '%s' must be a byte count >= 65536", v);
      limit_bytes = l;
    } else die("unknown option '%s' (see --help)", o);
  }
  if (!if_a || !if_b) die("both --a IF_A and --b IF_B are required (see --help)");
  if (strcmp(if_a, if_b) == 0) die("--a and --b must be different interfaces");
  for (int k = 0; k < 2; k++)
    if (jitter[k] > delay[k]) die("jitter (%lld ns) must not exceed delay (%lld ns)", (long long)jitter[k], (long long)delay[k]);
  rng_state = seed ? seed : 1;

  int fa = open_port(if_a), fb = open_port(if_b);
  struct direction dir[2] = {
      {.name = "ab", .in_fd = fa, .out_fd = fb, .delay_ns = delay[0], .jitter_ns = jitter[0], .loss = loss[0]},
      {.name = "ba", .in_fd = fb, .out_fd = fa, .delay_ns = delay[1], .jitter_ns = jitter[1], .loss = loss[1]},
  };
  unsigned char *buf = malloc(VNET_HDR_LEN + MAX_FRAME + 1);
  if (!buf) die("out of memory");

  if (rt) {
    struct sched_param sp = {.sched_priority = 40};
    if (sched_setscheduler(0, SCHED_FIFO, &sp) < 0)
      die("--rt: cannot switch to SCHED_FIFO: %s (run as root)", strerror(errno));
    if (mlockall(MCL_CURRENT | MCL_FUTURE) < 0) die("--rt: mlockall failed: %s", strerror(errno));
  }
  /* Tight timer slack: wake-ups land within microseconds of the due time. */
  prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);

  struct sigaction sa = {0};
  sa.sa_handler = on_stop;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sa.sa_handler = on_usr1;
  sigaction(SIGUSR1, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  if (pidfile) {
    FILE *pf = fopen(pidfile, "w");
    if (!pf) die("cannot write pidfile '%s': %s", pidfile, strerror(errno));
    fprintf(pf, "%d\n", getpid());
    fclose(pf);
  }
  fprintf(stderr, "{\"event\":\"ready\",\"a\":\"%s\",\"b\":\"%s\",\"delay_ab_ns\":%lld,\"delay_ba_ns\":%lld}\n",
          if_a, if_b, (long long)delay[0], (long long)delay[1]);
  fflush(stderr);

  int64_t next_stats = stats_every_ns > 0 ? now_ns(CLOCK_MONOTONIC) + stats_every_ns : INT64_MAX;
  while (!stop_sig) {
    if (stats_req) { stats_req = 0; print_stats(dir, 2, "stats"); }
    int64_t now = now_ns(CLOCK_MONOTONIC);
    if (now >= next_stats) { print_stats(dir, 2, "stats"); next_stats = now + stats_every_ns; }

    struct pollfd pfd[2] = {{.fd = fa}, {.fd = fb}};
    int64_t due = next_stats;
    for (int k = 0; k < 2; k++) {
      struct direction *d = &dir[k];
      pfd[k].events |= POLLIN; /* fd k is the input of dir[k] */
      if (d->head) {
        if (d->blocked) pfd[k == 0 ? 1 : 0].events |= POLLOUT; /* wait for its output socket */
        else if (d->head->release_ns < due) due = d->head->release_ns;
      }
    }
    struct timespec to, *top = NULL;
    if (due != INT64_MAX) {
      int64_t wait = due - now;
      if (wait < 0) wait = 0;
      to.tv_sec = wait / 1000000000LL;
      to.tv_nsec = wait % 1000000000LL;
      top = &to;
    }
    int r = ppoll(pfd, 2, top, NULL);
    if (r < 0 && errno != EINTR) die("ppoll: %s", strerror(errno));
    for (int k = 0; k < 2; k++) {
      if (r > 0 && (pfd[k].revents & POLLOUT)) dir[k == 0 ? 1 : 0].blocked = 0;
      if (r > 0 && (pfd[k].revents & (POLLIN | POLLERR))) receive(&dir[k], buf);
    }
    for (int k = 0; k < 2; k++) {
      dir[k].blocked = 0; /* retry sends; EAGAIN sets it again */
      release_due(&dir[k]);
    }
  }
  print_stats(dir, 2, "exit");
  if (pidfile) unlink(pidfile);
  return 0;
}
