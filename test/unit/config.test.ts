import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fileTempDir } from '../support/tmp.js';
import { serveFlags } from '../../src/cli/serve-flags.js';
import { ConfigError, defaultConfig, durationMs, loadConfig, validateConfig } from '../../src/config.js';

const dir = fileTempDir('peapod-config-');
let n = 0;
function file(content: unknown): string {
  const path = join(dir(), `config-${n++}.json`);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

describe('loadConfig precedence', () => {
  it('gives the defaults without a file and without flags', () => {
    expect(loadConfig({}, file({}))).toEqual(defaultConfig);
  });

  it('the file overrides the defaults', () => {
    const cfg = loadConfig({}, file({ socket: '/tmp/f.sock', logLevel: 'debug' }));
    expect(cfg.socket).toBe('/tmp/f.sock');
    expect(cfg.logLevel).toBe('debug');
    expect(cfg.root).toBe(defaultConfig.root);
  });

  it('flags override the file; undefined flags are not given', () => {
    const path = file({ socket: '/tmp/f.sock', root: '/tmp/froot', logLevel: 'warn' });
    const cfg = loadConfig({ socket: '/tmp/flag.sock', root: undefined, logLevel: undefined }, path);
    expect(cfg.socket).toBe('/tmp/flag.sock');
    expect(cfg.root).toBe('/tmp/froot');
    expect(cfg.logLevel).toBe('warn');
  });

  it('accepts every key of defaultConfig with its own default value', () => {
    expect(loadConfig({}, file(defaultConfig))).toEqual(defaultConfig);
  });

  it('an explicit --config that does not exist is an error', () => {
    expect(() => loadConfig({}, join(dir(), 'nope.json'))).toThrow(ConfigError);
    expect(() => loadConfig({}, join(dir(), 'nope.json'))).toThrow(/cannot read config file .*nope\.json/);
  });
});

describe('config validation', () => {
  it('rejects an unknown key, naming it and the known ones', () => {
    expect(() => loadConfig({}, file({ sockett: '/x' }))).toThrow(/unknown key "sockett" \(known: .*socket/);
  });

  it('rejects wrong types with the key, the expectation and what was given', () => {
    expect(() => loadConfig({}, file({ root: 42 }))).toThrow(/"root" must be a non-empty string \(got number 42\)/);
    expect(() => loadConfig({}, file({ root: '' }))).toThrow(/"root" must be a non-empty string/);
    expect(() => loadConfig({}, file({ logLevel: 'loud' }))).toThrow(/"logLevel" must be one of "debug", "info", "warn", "error"/);
  });

  it('reports every problem at once, with the file name', () => {
    const path = file({ root: [], nope: 1 });
    let err: unknown;
    try {
      loadConfig({}, path);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const msg = (err as Error).message;
    expect(msg.startsWith(`${path}: `)).toBe(true);
    expect(msg).toMatch(/"root" must be a non-empty string \(got an array\)/);
    expect(msg).toMatch(/unknown key "nope"/);
  });

  it('rejects a file that is not JSON or not an object', () => {
    expect(() => loadConfig({}, file('{ socket: '))).toThrow(/not valid JSON/);
    expect(() => loadConfig({}, file([]))).toThrow(/must hold a JSON object, not an array/);
    expect(() => loadConfig({}, file('null'))).toThrow(/not null/);
  });

  it('checks array and object fields by the type of their default', () => {
    const arrays = Object.entries(defaultConfig).filter(([, v]) => Array.isArray(v));
    for (const [key] of arrays) {
      expect(() => validateConfig({ [key]: 'x' }, 'f')).toThrow(new RegExp(`"${key}" must be an array`));
      expect(() => validateConfig({ [key]: [1] }, 'f')).toThrow(new RegExp(`"${key}" must be an array`));
    }
    const objects = Object.entries(defaultConfig).filter(([, v]) => typeof v === 'object' && v !== null && !Array.isArray(v));
    for (const [key] of objects) expect(() => validateConfig({ [key]: [] }, 'f')).toThrow(new RegExp(`"${key}" must`));
  });

  it('takes a cgroupfs path for podCgroupRoot, and refuses what could leave the root or is systemd syntax', () => {
    expect(loadConfig({ podCgroupRoot: 'runtimes/peapod' }, file({})).podCgroupRoot).toBe('runtimes/peapod');
    for (const bad of ['', '/', '../x', 'a/../../b', 'kubepods.slice', 'a\0b']) {
      expect(() => loadConfig({ podCgroupRoot: bad }, file({})), bad).toThrow(/"podCgroupRoot" is not usable: cgroup path/);
    }
    expect(() => loadConfig({}, file({ podCgroupRoot: 3 }))).toThrow(/"podCgroupRoot" must be a string/);
  });

  it('takes a Go duration for streamIdleTimeout, from the file or --stream-idle-timeout', () => {
    expect(defaultConfig.streamIdleTimeout).toBe('4h');
    expect(durationMs(defaultConfig.streamIdleTimeout)).toBe(4 * 3600_000);
    expect([durationMs('1m30s'), durationMs('1.5s'), durationMs('250ms'), durationMs('0')]).toEqual([90_000, 1500, 250, 0]);
    for (const bad of ['', '4', '-1s', '1d', 'h', '1h ']) expect(durationMs(bad), bad).toBeUndefined();
    expect(loadConfig({}, file({ streamIdleTimeout: '30m' })).streamIdleTimeout).toBe('30m');
    expect(() => loadConfig({}, file({ streamIdleTimeout: 60 }))).toThrow(/"streamIdleTimeout" must be a duration such as "4h"/);
    expect(serveFlags({ 'stream-idle-timeout': '1s' })).toEqual({ streamIdleTimeout: '1s' });
    expect(() => serveFlags({ 'stream-idle-timeout': '10' })).toThrow(/--stream-idle-timeout must be a duration/);
  });

  it('validates flags too', () => {
    expect(() => loadConfig({ socket: 7 as unknown as string }, file({}))).toThrow(/command line: "socket"/);
  });
});

describe('the README example', () => {
  it('is a valid config file', async () => {
    const { readFileSync } = await import('node:fs');
    const readme = readFileSync(join(import.meta.dirname, '../../README.md'), 'utf8');
    const m = /For example:\n\n((?: {4}.*\n)+)/.exec(readme);
    expect(m).not.toBeNull();
    const text = m![1]!.split('\n').map((l) => l.slice(4)).join('\n');
    const cfg = loadConfig({}, file(text));
    expect(cfg.socket).toBe(defaultConfig.socket);
  });
});
