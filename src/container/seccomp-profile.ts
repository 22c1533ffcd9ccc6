// Localhost seccomp profiles: the Docker/OCI JSON file, read and validated at
// CreateContainer, and its translation into the launcher's spec directives
// (format in native/container.h; native/seccomp-profile.c builds the filter).
import { closeSync, constants, fstatSync, openSync, readFileSync } from 'node:fs';
import { invalidArgument } from '../errors.js';
import type { NativeSpec } from './spec.js';
import type { SeccompAction, SeccompArg, SeccompMode, SeccompProfile } from './types.js';

const EPERM = 1;
const MAX_PROFILE_BYTES = 1024 * 1024;
const MAX_PATH = 4096;

const ACTIONS: Record<string, SeccompAction['action']> = {
  SCMP_ACT_ALLOW: 'allow',
  SCMP_ACT_ERRNO: 'errno',
  SCMP_ACT_KILL: 'kill-thread', // libseccomp's SCMP_ACT_KILL is KILL_THREAD
  SCMP_ACT_KILL_THREAD: 'kill-thread',
  SCMP_ACT_KILL_PROCESS: 'kill-process',
  SCMP_ACT_TRAP: 'trap',
  SCMP_ACT_TRACE: 'trace',
  SCMP_ACT_LOG: 'log',
};

const OPS: Record<string, SeccompArg['op']> = {
  SCMP_CMP_EQ: 'eq',
  SCMP_CMP_NE: 'ne',
  SCMP_CMP_LT: 'lt',
  SCMP_CMP_LE: 'le',
  SCMP_CMP_GT: 'gt',
  SCMP_CMP_GE: 'ge',
  SCMP_CMP_MASKED_EQ: 'masked-eq',
};

/** null: accepted, nothing to do (TSYNC: the container init is single-threaded when it loads the filter). */
const FLAGS: Record<string, SeccompProfile['flags'][number] | null> = {
  SECCOMP_FILTER_FLAG_TSYNC: null,
  SECCOMP_FILTER_FLAG_LOG: 'log',
  SECCOMP_FILTER_FLAG_SPEC_ALLOW: 'spec-allow',
};

/** This machine's architecture as a profile's archMap names it (process.arch → SCMP_ARCH_*). */
const NATIVE_ARCH: Record<string, string> = {
  x64: 'SCMP_ARCH_X86_64',
  ia32: 'SCMP_ARCH_X86',
  arm64: 'SCMP_ARCH_AARCH64',
  arm: 'SCMP_ARCH_ARM',
  ppc64: 'SCMP_ARCH_PPC64LE',
  s390x: 'SCMP_ARCH_S390X',
  riscv64: 'SCMP_ARCH_RISCV64',
  loong64: 'SCMP_ARCH_LOONGARCH64',
};

const SYSCALL_NAME = /^[A-Za-z0-9_]{1,64}$/;
const ARCH_NAME = /^SCMP_ARCH_[A-Z0-9_]{1,32}$/;

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const show = (v: unknown) => (JSON.stringify(v) ?? String(v)).slice(0, 64);

/**
 * Reads and validates the profile at `path` (an absolute path on the node).
 * Every problem is INVALID_ARGUMENT naming the path: a container is never
 * created with a profile other than the one asked for.
 */
export function readSeccompProfile(path: string): SeccompProfile {
  const where = `seccomp profile localhost "${path.slice(0, 256)}"`;
  if (!path.startsWith('/') || path.split('/').includes('..') || path.includes('\0') || path.length > MAX_PATH) {
    throw invalidArgument(`${where}: must be an absolute path on the node, without ".."`);
  }
  let text: string;
  try {
    // Non-blocking: a FIFO at the path must not hang the server.
    const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      const st = fstatSync(fd);
      if (!st.isFile()) throw new Error('not a regular file');
      if (st.size > MAX_PROFILE_BYTES) throw new Error(`larger than ${MAX_PROFILE_BYTES} bytes`);
      text = readFileSync(fd, 'utf8');
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw invalidArgument(`${where}: cannot read it: ${err.code === 'ENOENT' ? 'no such file (ENOENT)' : (err.code ?? err.message)}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw invalidArgument(`${where}: not valid JSON: ${(e as Error).message.slice(0, 200)}`);
  }
  return parseSeccompProfile(raw, path);
}

/**
 * The JSON profile → what the launcher applies, as containerd does: it
 * decodes the file into the OCI LinuxSeccomp, so the Docker-only fields are
 * dropped (an entry's includes/excludes do not restrict it), except that the
 * archMap entry of this machine's architecture adds its sub-architectures,
 * as Docker does.
 */
export function parseSeccompProfile(raw: unknown, path: string, nativeArch = NATIVE_ARCH[process.arch]): SeccompProfile {
  const fail = (what: string) => invalidArgument(`seccomp profile localhost "${path.slice(0, 256)}": ${what}`);
  if (!isObject(raw)) throw fail('not a JSON object');
  if (raw.listenerPath) throw fail('listenerPath (SCMP_ACT_NOTIFY) is not supported by peapod');
  if (raw.defaultAction === undefined) throw fail('defaultAction is required');

  const list = (v: unknown, field: string): unknown[] => {
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) throw fail(`${field} must be an array`);
    return v;
  };
  const int = (v: unknown, field: string, max: number): number => {
    if (v === undefined || v === null) return 0;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw fail(`${field} ${show(v)} must be a non-negative integer`);
    // JSON.parse rounds above 2^53: refuse rather than compare with another value.
    if (v > max) throw fail(`${field} ${show(v)} is above ${max}`);
    return v;
  };
  const action = (name: unknown, errnoRet: unknown, field: string): SeccompAction => {
    if (name === 'SCMP_ACT_NOTIFY') throw fail(`${field} SCMP_ACT_NOTIFY is not supported by peapod`);
    const a = typeof name === 'string' ? ACTIONS[name] : undefined;
    if (!a) throw fail(`${field} ${show(name)} is not one of ${Object.keys(ACTIONS).join(', ')}`);
    const takesErrno = a === 'errno' || a === 'trace';
    if (!takesErrno && errnoRet !== undefined && errnoRet !== null) throw fail(`${field}: an errno is only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE`);
    // As runc: an ERRNO or TRACE without a value is EPERM.
    return { action: a, errno: takesErrno && (errnoRet === undefined || errnoRet === null) ? EPERM : int(errnoRet, `${field} errno`, 0xffff) };
  };
  const arch = (v: unknown, field: string): string => {
    if (typeof v !== 'string' || !ARCH_NAME.test(v)) throw fail(`${field} ${show(v)} is not an architecture like SCMP_ARCH_X86_64`);
    return v.slice('SCMP_ARCH_'.length).toLowerCase(); // libseccomp's name for it
  };
  const arg = (v: unknown, field: string): SeccompArg => {
    if (!isObject(v)) throw fail(`${field} must be an object`);
    const op = typeof v.op === 'string' ? OPS[v.op] : undefined;
    if (!op) throw fail(`${field}.op ${show(v.op)} is not one of ${Object.keys(OPS).join(', ')}`);
    if (v.index === undefined) throw fail(`${field}.index is required`);
    return {
      index: int(v.index, `${field}.index`, 5),
      op,
      value: int(v.value, `${field}.value`, Number.MAX_SAFE_INTEGER),
      valueTwo: int(v.valueTwo, `${field}.valueTwo`, Number.MAX_SAFE_INTEGER),
    };
  };

  const defaultAction = action(raw.defaultAction, raw.defaultErrnoRet, 'defaultAction');
  const architectures = list(raw.architectures, 'architectures').map((a, i) => arch(a, `architectures[${i}]`));
  list(raw.archMap, 'archMap').forEach((m, i) => {
    if (!isObject(m)) throw fail(`archMap[${i}] must be an object`);
    const subs = list(m.subArchitectures, `archMap[${i}].subArchitectures`);
    if (m.architecture === nativeArch) architectures.push(...subs.map((a, j) => arch(a, `archMap[${i}].subArchitectures[${j}]`)));
  });
  const flags = list(raw.flags, 'flags').flatMap((f, i) => {
    const flag = typeof f === 'string' ? FLAGS[f] : undefined;
    if (flag === undefined) throw fail(`flags[${i}] ${show(f)} is not supported (${Object.keys(FLAGS).join(', ')})`);
    return flag === null ? [] : [flag];
  });
  const syscalls = list(raw.syscalls, 'syscalls').map((sc, i) => {
    const field = `syscalls[${i}]`;
    if (!isObject(sc)) throw fail(`${field} must be an object`);
    const names = list(sc.names, `${field}.names`);
    if (names.length === 0) throw fail(`${field}.names is empty`);
    for (const n of names) if (typeof n !== 'string' || !SYSCALL_NAME.test(n)) throw fail(`${field}.names: ${show(n)} is not a syscall name`);
    return {
      names: names as string[],
      action: action(sc.action, sc.errnoRet, `${field}.action`),
      args: list(sc.args, `${field}.args`).map((a, j) => arg(a, `${field}.args[${j}]`)),
    };
  });
  return { path, defaultAction, architectures: [...new Set(architectures)], flags: [...new Set(flags)], syscalls };
}

const sameAction = (a: SeccompAction, b: SeccompAction) => a.action === b.action && a.errno === b.errno;

/** The spec directives for a seccomp mode: `seccomp default|unconfined`, or a profile's lines. */
export function addSeccomp(spec: NativeSpec, mode: SeccompMode): void {
  if (typeof mode === 'string') {
    spec.add('seccomp', mode);
    return;
  }
  spec.add('seccomp-default', mode.defaultAction.action, mode.defaultAction.errno);
  for (const a of mode.architectures) spec.add('seccomp-arch', a);
  for (const f of mode.flags) spec.add('seccomp-flag', f);
  for (const sc of mode.syscalls) {
    // libseccomp refuses a rule with the default action; it would change nothing (runc skips it too).
    if (sameAction(sc.action, mode.defaultAction)) continue;
    // As runc: conditions on distinct arguments make one rule (all must hold);
    // two on one argument make a rule each (any may hold).
    const indexes = new Set(sc.args.map((a) => a.index));
    const rules = indexes.size < sc.args.length ? sc.args.map((a) => [a]) : [sc.args];
    for (const name of sc.names) {
      for (const args of rules) {
        spec.add('seccomp-rule', sc.action.action, sc.action.errno, name, ...args.map((a) => `${a.index}:${a.op}:${a.value}:${a.valueTwo}`));
      }
    }
  }
}
