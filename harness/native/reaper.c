/*
 * mb-reaper: runs a command as a child subreaper (prctl PR_SET_CHILD_SUBREAPER,
 * kept across execve). An emulated server's launcher execs through it into its
 * sshd, so a QEMU daemonized in an SSH session is re-parented to that sshd,
 * which reaps it at once, as systemd does on a real server. Without it the
 * orphan goes to this machine's PID 1, which reaped zombies only about once a
 * second here: `tail --pid` (which sees a zombie as alive) then reported each
 * guest's end 1-1.8 s late.
 *
 * Usage: mb-reaper PROGRAM [ARG]...
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: mb-reaper PROGRAM [ARG]...\n");
    return 2;
  }
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) {
    fprintf(stderr, "mb-reaper: prctl(PR_SET_CHILD_SUBREAPER): %s\n", strerror(errno));
    return 2;
  }
  execvp(argv[1], argv + 1);
  fprintf(stderr, "mb-reaper: cannot run %s: %s\n", argv[1], strerror(errno));
  return 127;
}
