import { describe, expect, it } from 'vitest';
import { interfacesOf, parseNetDev } from '../../src/linux/netdev.js';
import { identify } from '../../src/linux/proc.js';

describe('/proc/net/dev', () => {
  it('parses every interface with its receive and transmit bytes, packets, errors and drops, 64-bit figures kept exact', () => {
    const text = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     840       10    0    0    0     0          0         0      840      10    0    0    0     0       0          0
  eth0:18446744073709551615 75716    3    0    0     0          0         0  1045616   10139    4    0    0     0       0          0
veth-with-long-n: 1 2 5 6 0 0 0 0 7 8 9 10 0 0 0 0
`;
    expect(parseNetDev(text)).toEqual([
      { name: 'lo', rxBytes: '840', rxPackets: '10', rxErrors: '0', rxDropped: '0', txBytes: '840', txPackets: '10', txErrors: '0', txDropped: '0' },
      {
        name: 'eth0',
        rxBytes: '18446744073709551615',
        rxPackets: '75716',
        rxErrors: '3',
        rxDropped: '0',
        txBytes: '1045616',
        txPackets: '10139',
        txErrors: '4',
        txDropped: '0',
      },
      { name: 'veth-with-long-n', rxBytes: '1', rxPackets: '2', rxErrors: '5', rxDropped: '6', txBytes: '7', txPackets: '8', txErrors: '9', txDropped: '10' },
    ]);
  });

  it("reads a process's namespace; nothing for a process that is gone", () => {
    expect(interfacesOf(identify(process.pid)!)!.map((i) => i.name)).toContain('lo');
    expect(interfacesOf({ pid: process.pid, startTime: '1' })).toBeUndefined();
  });
});
