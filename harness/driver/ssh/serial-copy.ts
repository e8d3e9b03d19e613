import { closeSync, openSync, writeSync } from 'node:fs';

/**
 * The controller's copy of a remote serial console, written as each chunk arrives (synchronously: a line the
 * console parser has seen is in the file too, as with a local QEMU writing its own log). A write that fails (a
 * full controller disk) stops the copy; it never takes the guest down, and the console parser still runs.
 */
export class SerialCopy {
  private fd: number | null;

  constructor(path: string, flags: 'w' | 'a' = 'w') {
    try {
      this.fd = openSync(path, flags);
    } catch {
      this.fd = null; // e.g. a full or read-only controller disk: no copy, the guest runs on
    }
  }

  write(s: string): void {
    if (this.fd === null) return;
    try {
      writeSync(this.fd, s);
    } catch {
      this.end();
    }
  }

  end(): void {
    if (this.fd === null) return;
    try {
      closeSync(this.fd);
    } catch {
      /* already unusable */
    }
    this.fd = null;
  }
}
