import { invalidArgument } from '../errors.js';
import { addSeccomp } from './seccomp-profile.js';
import type { ProcessSpec } from './types.js';

/**
 * Writer for the launcher's spec file (format in native/container.h): one
 * directive per line, fields percent-encoded so spaces, newlines and any
 * other byte travel safely.
 */
export class NativeSpec {
  private readonly lines: string[] = [];

  add(directive: string, ...fields: Array<string | number>): this {
    this.lines.push([directive, ...fields.map((f) => encodeField(String(f)))].join(' '));
    return this;
  }

  toString(): string {
    return this.lines.join('\n') + '\n';
  }
}

/** Bytes that travel as themselves; everything else is %XX. */
const PLAIN = /^[A-Za-z0-9._/:=,+@-]+$/;

export function encodeField(value: string): string {
  if (value === '') return '%';
  // Most fields (paths, ids, numbers) need no escaping.
  if (PLAIN.test(value)) return value;
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9._/:=,+@-]/.test(c) ? c : '%' + byte.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

/** The process part, shared by a container's spec and an exec's. */
export function addProcess(spec: NativeSpec, p: ProcessSpec): void {
  for (const a of p.args) {
    if (a.includes('\0')) throw invalidArgument('command arguments must not contain NUL bytes');
  }
  spec.add('cwd', p.cwd);
  spec.add('user', p.uid, p.gid, ...(p.groups.length ? [p.groups.join(',')] : []));
  for (const e of p.env) spec.add('env', e);
  for (const a of p.args) spec.add('arg', a);
  spec.add('caps', p.capabilities.toString(16));
  if (p.noNewPrivs) spec.add('no-new-privs');
  addSeccomp(spec, p.seccomp);
}
