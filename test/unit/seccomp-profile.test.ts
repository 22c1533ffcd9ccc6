// Localhost seccomp profiles: the Docker/OCI JSON read and validated at
// CreateContainer (every problem INVALID_ARGUMENT naming the file), and its
// translation into the launcher's seccomp-* spec directives.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { addSeccomp, parseSeccompProfile, readSeccompProfile } from '../../src/container/seccomp-profile.js';
import { NativeSpec } from '../../src/container/spec.js';
import type { SeccompMode } from '../../src/container/types.js';
import { refusal } from '../support/errors.js';
import { fileTempDir } from '../support/tmp.js';

const dir = fileTempDir('peapod-seccomp-profile-');

const X86_64 = 'SCMP_ARCH_X86_64';
const lines = (mode: SeccompMode) => {
  const spec = new NativeSpec();
  addSeccomp(spec, mode);
  return spec.toString().trimEnd().split('\n');
};
const translate = (profile: unknown) => lines(parseSeccompProfile(profile, '/p.json', X86_64));

describe('seccomp profile → spec directives', () => {
  it('keeps the built-in modes one line', () => {
    expect(lines('default')).toEqual(['seccomp default']);
    expect(lines('unconfined')).toEqual(['seccomp unconfined']);
  });

  it('writes the default action, architectures, flags and one rule per syscall name', () => {
    expect(
      translate({
        defaultAction: 'SCMP_ACT_ALLOW',
        architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
        flags: ['SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_TSYNC'],
        syscalls: [
          { names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO' },
          { names: ['reboot'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 },
          { names: ['kexec_load'], action: 'SCMP_ACT_KILL' },
          { names: ['ptrace'], action: 'SCMP_ACT_KILL_PROCESS', includes: { caps: ['CAP_SYS_PTRACE'] } },
          { names: ['getpid'], action: 'SCMP_ACT_ALLOW' }, // the default: nothing to add
        ],
      }),
    ).toEqual([
      'seccomp-default allow 0',
      'seccomp-arch x86_64',
      'seccomp-arch x86',
      'seccomp-arch x32',
      'seccomp-flag log',
      'seccomp-rule errno 1 mkdir',
      'seccomp-rule errno 1 mkdirat',
      'seccomp-rule errno 38 reboot',
      'seccomp-rule kill-thread 0 kexec_load',
      // As containerd: includes/excludes are not part of the OCI profile, the rule applies as given.
      'seccomp-rule kill-process 0 ptrace',
    ]);
  });

  it('an allow-list with defaultErrnoRet, and argument conditions as runc groups them', () => {
    expect(
      translate({
        defaultAction: 'SCMP_ACT_ERRNO',
        defaultErrnoRet: 38,
        syscalls: [
          { names: ['read', 'write'], action: 'SCMP_ACT_ALLOW' },
          {
            names: ['clone'],
            action: 'SCMP_ACT_ALLOW',
            args: [{ index: 0, value: 2114060288, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }],
          },
          {
            names: ['socket'],
            action: 'SCMP_ACT_ALLOW',
            args: [
              { index: 0, value: 1, op: 'SCMP_CMP_EQ' },
              { index: 1, value: 5, op: 'SCMP_CMP_LE' },
            ],
          },
          {
            names: ['personality'],
            action: 'SCMP_ACT_ALLOW',
            args: [
              { index: 0, value: 0, op: 'SCMP_CMP_EQ' },
              { index: 0, value: 8, op: 'SCMP_CMP_EQ' },
            ],
          },
          { names: ['getpid'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 }, // the default: nothing to add
        ],
      }),
    ).toEqual([
      'seccomp-default errno 38',
      'seccomp-rule allow 0 read',
      'seccomp-rule allow 0 write',
      'seccomp-rule allow 0 clone 0:masked-eq:2114060288:0',
      // Distinct arguments: one rule, all must hold.
      'seccomp-rule allow 0 socket 0:eq:1:0 1:le:5:0',
      // The same argument twice: a rule each, either may hold.
      'seccomp-rule allow 0 personality 0:eq:0:0',
      'seccomp-rule allow 0 personality 0:eq:8:0',
    ]);
  });

  it("takes the archMap entry of this machine's architecture only", () => {
    const archMap = [
      { architecture: 'SCMP_ARCH_X86_64', subArchitectures: ['SCMP_ARCH_X86', 'SCMP_ARCH_X32'] },
      { architecture: 'SCMP_ARCH_AARCH64', subArchitectures: ['SCMP_ARCH_ARM'] },
    ];
    expect(parseSeccompProfile({ defaultAction: 'SCMP_ACT_ALLOW', archMap }, '/p', X86_64).architectures).toEqual(['x86', 'x32']);
    expect(parseSeccompProfile({ defaultAction: 'SCMP_ACT_ALLOW', archMap }, '/p', 'SCMP_ARCH_AARCH64').architectures).toEqual(['arm']);
  });

  it.each([
    ['not an object', [], /not a JSON object/],
    ['no defaultAction', { syscalls: [] }, /defaultAction is required/],
    ['unknown action', { defaultAction: 'SCMP_ACT_MAYBE' }, /defaultAction "SCMP_ACT_MAYBE" is not one of/],
    ['notify', { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['read'], action: 'SCMP_ACT_NOTIFY' }] }, /SCMP_ACT_NOTIFY is not supported/],
    ['listenerPath', { defaultAction: 'SCMP_ACT_ALLOW', listenerPath: '/run/agent.sock' }, /listenerPath/],
    ['errno on allow', { defaultAction: 'SCMP_ACT_ALLOW', defaultErrnoRet: 1 }, /only valid with SCMP_ACT_ERRNO/],
    ['negative errno', { defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: -1 }, /non-negative integer/],
    ['bad architecture', { defaultAction: 'SCMP_ACT_ALLOW', architectures: ['x86_64'] }, /architectures\[0\] "x86_64" is not an architecture/],
    ['unknown flag', { defaultAction: 'SCMP_ACT_ALLOW', flags: ['SECCOMP_FILTER_FLAG_NEW_LISTENER'] }, /flags\[0\] .* is not supported/],
    ['syscalls not a list', { defaultAction: 'SCMP_ACT_ALLOW', syscalls: {} }, /syscalls must be an array/],
    ['no names', { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ action: 'SCMP_ACT_ERRNO' }] }, /syscalls\[0\]\.names is empty/],
    ['bad name', { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mk dir'], action: 'SCMP_ACT_ERRNO' }] }, /"mk dir" is not a syscall name/],
    ['bad op', { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: 1, op: 'SCMP_CMP_IN' }] }] }, /args\[0\]\.op "SCMP_CMP_IN"/],
    ['index 6', { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ERRNO', args: [{ index: 6, value: 1, op: 'SCMP_CMP_EQ' }] }] }, /args\[0\]\.index 6 is above 5/],
    ['value beyond 2^53', { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: 2 ** 64, op: 'SCMP_CMP_EQ' }] }] }, /value .* is above/],
  ])('refuses %s, naming the file', (_label, profile, want) => {
    const msg = refusal(() => parseSeccompProfile(profile, '/etc/seccomp/p.json', X86_64));
    expect(msg).toMatch(/^seccomp profile localhost "\/etc\/seccomp\/p\.json": /);
    expect(msg).toMatch(want);
  });
});

describe('reading a seccomp profile file', () => {
  it('reads and validates an absolute path', () => {
    const path = join(dir(), 'ok.json');
    writeFileSync(path, JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO' }] }));
    const p = readSeccompProfile(path);
    expect(p.path).toBe(path);
    expect(p.syscalls).toEqual([{ names: ['mkdir'], action: { action: 'errno', errno: 1 }, args: [] }]);
  });

  it('refuses a relative path, "..", a missing file, a directory and bad JSON, naming the path and the problem', () => {
    mkdirSync(join(dir(), 'sub'), { recursive: true });
    writeFileSync(join(dir(), 'bad.json'), '{"defaultAction": ');
    expect(refusal(() => readSeccompProfile('profiles/p.json'))).toMatch(/"profiles\/p\.json": must be an absolute path/);
    expect(refusal(() => readSeccompProfile(`${dir()}/sub/../bad.json`))).toMatch(/must be an absolute path on the node, without "\.\."/);
    expect(refusal(() => readSeccompProfile(''))).toMatch(/must be an absolute path/);
    expect(refusal(() => readSeccompProfile(join(dir(), 'missing.json')))).toMatch(/missing\.json": cannot read it: no such file/);
    expect(refusal(() => readSeccompProfile(join(dir(), 'sub')))).toMatch(/sub": cannot read it: not a regular file/);
    expect(refusal(() => readSeccompProfile(join(dir(), 'bad.json')))).toMatch(/bad\.json": not valid JSON/);
  });
});
