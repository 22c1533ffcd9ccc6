import { libc } from '../ffi/index.js';
import { AF_INET, IFF_UP, SIOCGIFFLAGS, SIOCSIFFLAGS, SOCK_CLOEXEC, SOCK_DGRAM } from '../ffi/constants.js';

const IFREQ_SIZE = 40;
const IFNAMSIZ = 16;

/** Sets IFF_UP on an interface of the calling thread's network namespace. */
export function linkUp(name: string): void {
  const c = libc();
  const ifr = new Uint8Array(IFREQ_SIZE);
  const bytes = new TextEncoder().encode(name);
  if (bytes.length >= IFNAMSIZ) throw new Error(`interface name too long: ${name}`);
  ifr.set(bytes);
  const fd = c.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  try {
    c.ioctl(fd, SIOCGIFFLAGS, ifr);
    const view = new DataView(ifr.buffer);
    view.setInt16(IFNAMSIZ, view.getInt16(IFNAMSIZ, true) | IFF_UP, true);
    c.ioctl(fd, SIOCSIFFLAGS, ifr);
  } finally {
    c.close(fd);
  }
}
