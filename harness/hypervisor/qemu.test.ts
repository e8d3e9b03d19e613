import { describe, expect, it } from 'vitest';
import { guestCmdline, qemuArgs, type StartVmOptions } from './qemu.ts';
import { checkQemuUsable, parseQemuVersion } from './version.ts';
import { UserError } from '../util/errors.ts';

const base: StartVmOptions = {
  name: 'vm1',
  memoryMiB: 128,
  accel: 'tcg',
  runDir: '/tmp/x',
  image: { kernel: '/k/vmlinuz', initrd: '/k/initrd.img', hash: 'h', kernelVersion: '6.1' },
};
const paths = { qmp: '/tmp/x/vm1.qmp', serialLog: '/tmp/x/vm1.serial.log' };

function opt(args: string[], flag: string): string[] {
  return args.flatMap((a, i) => (a === flag ? [args[i + 1]] : []));
}

describe('QEMU launcher arguments', () => {
  it('builds the guest command line our /init reads', () => {
    expect(guestCmdline({ name: 'vm1', ip: '10.0.0.2/24', gw: '10.0.0.1', httpd: true, workload: 'dirty:wset=32M,bpc=64' })).toBe(
      'console=ttyS0 loglevel=5 panic=-1 mb.vm=vm1 mb.ip=10.0.0.2/24 mb.gw=10.0.0.1 mb.httpd=1 mb.workload=dirty:wset=32M,bpc=64',
    );
    expect(() => guestCmdline({ name: 'vm 1' })).toThrow(UserError);
    expect(() => guestCmdline({ name: 'vm1', ip: '10.0.0.2' })).toThrow(/10\.0\.0\.2\/24/);
  });

  it('uses TCG with -cpu max, no NIC without a tap, QMP and a logged stdio serial', () => {
    const a = qemuArgs(base, paths);
    expect(opt(a, '-accel')).toEqual(['tcg']);
    expect(opt(a, '-cpu')).toEqual(['max']);
    expect(a).toContain('-nodefaults'); // no default NIC, VGA or monitor
    expect(opt(a, '-netdev')).toEqual([]);
    expect(opt(a, '-qmp')).toEqual(['unix:/tmp/x/vm1.qmp,server=on,wait=off']);
    expect(opt(a, '-chardev')[0]).toMatch(/^stdio,id=ser0,.*logfile=\/tmp\/x\/vm1\.serial\.log$/);
    expect(a).not.toContain('-incoming');
  });

  it('attaches an existing tap with virtio-net, and defers incoming migrations', () => {
    const a = qemuArgs({ ...base, accel: 'kvm', tap: { ifname: 'mb-g-tap0', mac: '52:54:00:00:00:01' }, incoming: 'defer' }, paths);
    expect(opt(a, '-cpu')).toEqual(['host']);
    expect(opt(a, '-netdev')).toEqual(['tap,id=net0,ifname=mb-g-tap0,script=no,downscript=no']);
    expect(opt(a, '-device')).toEqual(['virtio-net-pci,netdev=net0,mac=52:54:00:00:00:01']);
    expect(opt(a, '-incoming')).toEqual(['defer']);
    expect(() => qemuArgs({ ...base, tap: { ifname: 't', mac: 'nope' } }, paths)).toThrow(/MAC/);
    expect(() => qemuArgs({ ...base, memoryMiB: 8 }, paths)).toThrow(/memory/);
  });

  it('writes the serial console only to the log file when asked (a daemonized remote QEMU)', () => {
    const a = qemuArgs(base, { ...paths, serial: 'file' });
    expect(opt(a, '-chardev')).toEqual(['file,id=ser0,path=/tmp/x/vm1.serial.log']);
    expect(opt(a, '-serial')).toEqual(['chardev:ser0']);
    expect(a.join(' ')).not.toContain('stdio');
  });

  it('logs the console and listens for input on a unix socket when asked (a restored remote guest)', () => {
    const a = qemuArgs(base, { ...paths, serial: 'socket', serialSocket: '/tmp/x,y/vm1.serial.sock' });
    expect(opt(a, '-chardev')).toEqual(['socket,id=ser0,path=/tmp/x,,y/vm1.serial.sock,server=on,wait=off,logfile=/tmp/x/vm1.serial.log']);
    expect(opt(a, '-serial')).toEqual(['chardev:ser0']);
    expect(() => qemuArgs(base, { ...paths, serial: 'socket' })).toThrow(/serialSocket/);
  });

  it('escapes commas in option values', () => {
    const a = qemuArgs(base, { qmp: '/tmp/a,b/q', serialLog: '/tmp/a,b/s' });
    expect(opt(a, '-qmp')).toEqual(['unix:/tmp/a,,b/q,server=on,wait=off']);
  });
});

describe('QEMU version check', () => {
  it('parses the version line', () => {
    expect(parseQemuVersion('QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)\nCopyright')).toMatchObject({
      major: 10,
      minor: 0,
      micro: 2,
    });
    expect(parseQemuVersion('QEMU emulator version 7.2.15 (Debian 1:7.2+dfsg-7+deb12u13)')).toMatchObject({ major: 7, minor: 2 });
  });

  it('refuses TCG before 9.0 with the fix, accepts KVM and new QEMU', () => {
    const old = parseQemuVersion('QEMU emulator version 7.2.15');
    expect(() => checkQemuUsable(old, 'tcg')).toThrow(UserError);
    expect(() => checkQemuUsable(old, 'tcg')).toThrow(/corrupts guests.*bookworm-backports install qemu-system-x86/);
    expect(() => checkQemuUsable(old, 'kvm')).not.toThrow();
    expect(() => checkQemuUsable(parseQemuVersion('QEMU emulator version 9.0.0'), 'tcg')).not.toThrow();
  });
});
