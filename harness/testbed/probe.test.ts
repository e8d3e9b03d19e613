import { describe, expect, it } from 'vitest';
import { ifnameWithAddress, rxBytes } from './probe.ts';

// recorded on this machine inside a testbed host namespace (cat /proc/<pid>/net/dev; ip -o -4 addr show)
const NET_DEV = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0
 mb-br: 11921334    4145    0    0    0     0          0        85   300761    4028    0    0    0     0       0          0
mb-data: 12650763    4376    0    0    0     0          0         0   301257    4034    0    0    0     0       0          0
`;
// the first two lines recorded there too; the third (a veth holding an address) is written in the form ip prints
const ADDRS = `1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever
2: mb-br    inet 10.231.2.2/16 scope global mb-br\\       valid_lft forever preferred_lft forever
5: mb-mig@if6    inet 10.232.1.4/24 brd 10.232.1.255 scope global mb-mig\\       valid_lft forever preferred_lft forever
`;

describe('receiver counters for concurrent flows', () => {
  it('reads the received bytes of the named interface only', () => {
    expect(rxBytes(NET_DEV, 'mb-br')).toBe(11921334);
    expect(rxBytes(NET_DEV, 'mb-data')).toBe(12650763);
    expect(rxBytes(NET_DEV, 'lo')).toBe(0);
  });

  it('names a missing interface rather than reading another', () => {
    expect(() => rxBytes(NET_DEV, 'mb-d')).toThrow(/interface mb-d not in \/proc\/net\/dev/);
  });

  it('finds the interface that holds an address, without its @peer suffix', () => {
    expect(ifnameWithAddress(ADDRS, '10.232.1.4')).toBe('mb-mig');
    expect(ifnameWithAddress(ADDRS, '10.231.2.2')).toBe('mb-br');
    expect(ifnameWithAddress(ADDRS, '10.232.1.40')).toBeNull();
  });
});
