// A native monitor's control socket, as the server speaks to it.
import { createConnection } from 'node:net';
import { join } from 'node:path';

/** One command on the control socket of the monitor whose dir is `dir`, one reply line back. */
export function ctl(dir: string, cmd: string): Promise<string> {
  return new Promise((res, rej) => {
    const sock = createConnection(join(dir, 'control.sock'));
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(cmd + '\n'));
    sock.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        sock.destroy();
        res(buf.slice(0, nl));
      }
    });
    sock.on('error', rej);
    sock.on('close', () => rej(new Error(`control socket closed before a reply to ${cmd}`)));
  });
}
