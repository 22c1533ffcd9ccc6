// The pod commands' argument checks, made before any call to the server:
// kubectl's pod/NAME form and its refusals, and the flags' values.
import { expect, it } from 'vitest';
import { podCommand } from '../../src/cli/pod.js';
import { UsageError } from '../../src/cli/usage.js';

const refused = async (cmd: string, args: string[]) => {
  const err = await podCommand(cmd, [...args, '--socket', '/nonexistent.sock']).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `${cmd} ${args.join(' ')}`).toBeInstanceOf(UsageError);
  return (err as Error).message;
};

it('refuses a resource other than pods by name, in either of kubectl\'s forms', async () => {
  expect(await refused('get', ['nodes'])).toBe('get: only pods are supported (got "nodes")');
  expect(await refused('describe', ['svc/x'])).toBe('describe: only pods are supported (got "svc/x")');
  expect(await refused('logs', ['deploy/x'])).toBe('logs: only pods are supported (got "deploy/x")');
  expect(await refused('exec', ['pod/', '--', 'ls'])).toBe('exec: give a pod NAME after "pod/"');
  expect(await refused('delete', ['pod/a', 'node/b'])).toBe('delete: only pods are supported (got "node/b")');
});

it('refuses flag values it cannot use, naming them', async () => {
  expect(await refused('logs', ['x', '--tail=-2'])).toBe('logs: --tail must be a number of lines, or -1 for all (got "-2")');
  // As kubectl, a negative value may follow the flag as the next argument.
  expect(await refused('logs', ['x', '--tail', '-2'])).toBe('logs: --tail must be a number of lines, or -1 for all (got "-2")');
  expect(await refused('logs', ['x', '--since', '5s', '--since-time', '2026-11-24T10:00:00Z'])).toBe('logs: at most one of --since and --since-time may be given');
  expect(await refused('logs', ['x', 'c', '--all-containers'])).toBe('logs: --all-containers=true should not be specified with a container name');
  expect(await refused('logs', ['x', '--since', 'yesterday'])).toBe('logs: --since must be a duration such as 5s, 2m or 3h (got "yesterday")');
  expect(await refused('logs', ['x', '--since-time', '2026-11-24'])).toBe('logs: --since-time must be an RFC 3339 time such as 2026-11-24T10:00:00Z (got "2026-11-24")');
  const all = await podCommand('logs', ['x', '--tail', '-1', '--socket', '/nonexistent.sock']).catch((e: unknown) => e);
  expect(all).not.toBeInstanceOf(UsageError);
  expect((all as Error).message).toMatch(/^cannot reach the peapod server/);
  expect(await refused('exec', ['x', '--timeout', 'abc', '--', 'ls'])).toBe('exec: --timeout must be a whole number of seconds (got "abc")');
  expect(await refused('get', ['pods', 'x', '-l', 'app=web'])).toBe('get: a NAME cannot be given with a selector (-l)');
  expect(await refused('delete', ['x', '-l', 'app=web'])).toBe('delete: a NAME cannot be given with a selector (-l)');
  expect(await refused('get', ['pods', '-l', 'app in web'])).toMatch(/^unable to parse requirement: "app in web"/);
});

it('reads -X=VALUE as kubectl does, and checks -o templates before any call', async () => {
  expect(await refused('get', ['pods', '-o=table'])).toMatch(
    /^get: -o must be wide, name, yaml, json, jsonpath=TEMPLATE, jsonpath-as-json=TEMPLATE, jsonpath-file=FILE, custom-columns=SPEC or custom-columns-file=FILE \(got "table"\)/,
  );
  const notCalled = async (args: string[]) => (await podCommand('get', [...args, '--socket', '/nonexistent.sock']).catch((e: unknown) => e)) as Error;
  expect((await notCalled(['pods', '-o', 'jsonpath={.items[0}'])).message).toBe('error parsing jsonpath {.items[0}, unterminated array');
  expect((await notCalled(['pods', '-o', 'jsonpath'])).message).toBe('get: jsonpath format specified but no template given');
  expect((await notCalled(['pods', '-o=custom-columns=NAME'])).message).toBe('unexpected custom-columns spec: NAME, expected <header>:<json-path-expr>');
  expect((await notCalled(['pods', '-o', 'jsonpath-file=/nonexistent/t'])).message).toMatch(/^get: error reading --template \/nonexistent\/t: ENOENT/);
  expect((await notCalled(['pods', '-o', 'custom-columns-file'])).message).toBe('get: custom-columns-file format specified but no custom columns given');
  // A good template goes on to the call.
  expect((await notCalled(['pods', '-o=jsonpath={.items[*].metadata.name}'])).message).toMatch(/^cannot reach the peapod server/);
});
