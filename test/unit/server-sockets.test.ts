// The server's two unix sockets, in process: the CRI socket is never open to
// all, not even between its bind and its chmod, and replaces nothing but a
// stale socket; the helpers socket's close removes that socket and no other.

import { promises as fsp, existsSync, lstatSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { fileTempDir } from '../support/tmp.js';
import { serveCri } from '../../src/cri/server.js';
import { Helpers } from '../../src/linux/helpers.js';
import { Reaper } from '../../src/linux/reaper.js';
import { silentLogger } from '../../src/log.js';

const dir = fileTempDir('peapod-sockets-');
afterEach(() => vi.restoreAllMocks());

const services = { runtime: {}, image: {} };

describe('CRI socket', () => {
  it('is bound 0660 under umask 000, and the umask is given back', async () => {
    const socket = join(dir(), 'umask.sock');
    const modes: number[] = [];
    const chmod = fsp.chmod;
    vi.spyOn(fsp, 'chmod').mockImplementation(async (path, mode) => {
      modes.push(statSync(path).mode & 0o777); // as bound, before the chmod
      return chmod(path, mode);
    });
    const before = process.umask(0);
    try {
      const server = await serveCri(socket, services, silentLogger);
      expect(process.umask()).toBe(0);
      await server.close();
    } finally {
      process.umask(before);
    }
    expect(modes).toEqual([0o660]);
  });

  it('refuses a path that holds a regular file and keeps the file', async () => {
    const socket = join(dir(), 'file.sock');
    writeFileSync(socket, 'keep me\n');
    await expect(serveCri(socket, services, silentLogger)).rejects.toThrow(`${socket} exists and is not a socket; remove it or choose another --socket`);
    expect(readFileSync(socket, 'utf8')).toBe('keep me\n');
  });
});

describe('helpers socket', () => {
  it('close removes the socket it bound, and not what replaced it', async () => {
    const path = join(dir(), 'helpers.sock');
    let helpers = new Helpers(path, new Reaper());
    await helpers.listen();
    expect(lstatSync(path).isSocket()).toBe(true);
    await helpers.close();
    expect(existsSync(path)).toBe(false);

    helpers = new Helpers(path, new Reaper());
    await helpers.listen();
    rmSync(path);
    writeFileSync(path, 'another server\n');
    await helpers.close();
    expect(readFileSync(path, 'utf8')).toBe('another server\n');
  });
});
