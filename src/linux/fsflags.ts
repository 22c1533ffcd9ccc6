import { FS_IOC_GETFLAGS, FS_IOC_SETFLAGS, FS_TOPDIR_FL, libc, O_CLOEXEC, O_DIRECTORY, O_RDONLY } from '../ffi/index.js';

/**
 * Marks `dir` as the top of directory hierarchies (chattr +T) on ext2/3/4:
 * each new subdirectory, with what is then made inside it, goes to a block
 * group of its own instead of its parent's. Writable layers are made and
 * removed all day; kept in one group, every new inode there is found by
 * skipping the recently deleted ones, and on ext4 without a journal that scan
 * made overlayfs' own mount-time checks cost 1.3–2.5 ms instead of 0.4 ms.
 * Returns false where the file system has no such flag (tmpfs, xfs, btrfs).
 */
export function spreadSubdirectories(dir: string): boolean {
  const c = libc();
  const fd = c.open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  try {
    const flags = new Uint8Array(8);
    c.ioctl(fd, FS_IOC_GETFLAGS, flags);
    const view = new DataView(flags.buffer);
    view.setInt32(0, view.getInt32(0, true) | FS_TOPDIR_FL, true);
    c.ioctl(fd, FS_IOC_SETFLAGS, flags);
    return true;
  } catch {
    return false;
  } finally {
    c.close(fd);
  }
}
