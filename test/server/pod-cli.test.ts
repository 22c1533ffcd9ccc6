// The pod CLI's interactive exec (CRI Exec, then the WebSocket stream) and
// logs -f across container restarts, against a real server on the matrix
// runtime, with the CLI under the same runtime; -it gets a terminal from script(1).

import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { constants as osConstants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PodView } from '../../src/pod/status.js';
import { preloadBusybox } from '../support/images.js';
import { podCli } from '../support/pods.js';
import { peapodCommand, runtime, startServer, type TestServer } from '../support/server.js';
import { sleep, waitFor } from '../support/wait.js';


interface CliResult {
  code: number;
  out: Buffer;
  err: string;
}

/** Waits for a started CLI to exit; its output as bytes (exec -i is checked byte for byte). */
function finished(child: ChildProcess): Promise<CliResult> {
  const out: Buffer[] = [];
  let err = '';
  child.stdout!.on('data', (d: Buffer) => out.push(d));
  child.stderr!.on('data', (d: Buffer) => (err += d));
  return new Promise((resolve) => child.once('close', (code, sig) => resolve({ code: code ?? 128 + osConstants.signals[sig!], out: Buffer.concat(out), err })));
}

describe(`pod CLI: exec -i/-t and logs -f [server on ${runtime}]`, () => {
  let s: TestServer;
  let base: string;
  const children = new Set<ChildProcess>();

  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'peapod-podcli-'));
    // Restarts after 300 ms, 600 ms… instead of the kubelet's 10 s, 20 s…
    s = await startServer({ PEAPOD_BACKOFF_BASE_MS: '300' }, preloadBusybox, { args: ['--pod-log-dir', join(base, 'logs')] });
  });
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    if (s) {
      await podCli(() => s).deleteAll().catch(() => undefined);
      await s.cleanup();
    }
    rmSync(base, { recursive: true, force: true });
  });

  /** `peapod CMD --socket … ARGS…` started; its stdin stays open unless `input` is given. */
  const started = (args: string[], input?: string | Buffer) => {
    const c = spawn(peapodCommand[0], [...peapodCommand.slice(1), args[0]!, '--socket', s.socket, ...args.slice(1)], { stdio: 'pipe' });
    children.add(c);
    c.stdin!.on('error', () => {}); // the command may exit before it read everything
    if (input !== undefined) c.stdin!.end(input);
    return c;
  };
  const cli = (args: string[], input?: string | Buffer) => finished(started(args, input));
  // The pods themselves are made and inspected over gRPC: the CLI's own run is tested with the examples.
  const k = podCli(() => s);
  const getPod = (name: string) => k.pod(name);
  const apply = (name: string, spec: string) => k.apply(`apiVersion: v1\nkind: Pod\nmetadata:\n  name: ${name}\nspec:\n  terminationGracePeriodSeconds: 1\n${spec}`);
  const container = (command: string) => `    - name: c\n      image: busybox\n      imagePullPolicy: IfNotPresent\n      command: ["sh", "-c", ${JSON.stringify(command)}]`;
  /** How many `method` calls the server has answered so far: its debug log has a line for each, written before the answer. */
  const answered = (method: string) => s.output().split(`"msg":"rpc","method":"${method}"`).length - 1;
  const running = (name: string, restarts = 0) =>
    waitFor(`${name} running`, async () => {
      const c = (await getPod(name)).status.containerStatuses[0]!;
      return !!c.state.running && c.restartCount === restarts;
    });

  describe('exec', () => {
    beforeAll(async () => {
      await apply('shell', `  containers:\n${container('exec sleep 3600')}`);
      await running('shell');
    });

    it('-i copies stdin in byte for byte, closes it at the end of input, and exits with the command\'s code', async () => {
      // Binary and larger than any one message or pipe buffer: flow control on both sides.
      const input = Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, i) => i)), randomBytes(3 * 1024 * 1024)]);
      const r = await cli(['exec', '-i', 'shell', '--', 'sh', '-c', 'cat; echo "stdin closed" >&2; exit 3'], input);
      expect(r.err).toBe('stdin closed\n');
      expect(r.code).toBe(3);
      expect(r.out.length).toBe(input.length);
      expect(r.out.equals(input)).toBe(true);

      const ok = await cli(['exec', '-i', 'shell', '--', 'sh', '-c', 'read line; echo "got $line"'], 'hello\n');
      expect([ok.code, ok.out.toString(), ok.err]).toEqual([0, 'got hello\n', '']);
    });

    it('a slow reader still gets the whole output before the CLI exits', async () => {
      // The CLI outruns a reader that takes a pause after each chunk, so output is still
      // queued when the exit status comes: exiting then must not drop it (Bun did, at times).
      const size = 3 * 1024 * 1024;
      for (let run = 0; run < 3; run++) {
        const child = started(['exec', 'shell', '--', 'head', '-c', String(size), '/dev/zero']);
        let got = 0;
        child.stdout!.on('data', (d: Buffer) => {
          got += d.length;
          child.stdout!.pause();
          setTimeout(() => child.stdout!.resume(), 5);
        });
        const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
        expect([run, code, got]).toEqual([run, 0, size]);
      }
    });

    it('without -i streams output as the command writes it, stdout and stderr apart, and leaves local input alone', async () => {
      const child = started(['exec', 'shell', '--', 'sh', '-c', 'echo first; echo warn >&2; while [ ! -e /tmp/go ]; do sleep 0.1; done; echo second; exit 5']);
      let early = '';
      child.stdout!.on('data', (d: Buffer) => (early += d));
      const done = finished(child);
      // Buffered until the exit (ExecSync), "first" would not show while the command waits.
      await waitFor('the first line while the command still runs', async () => early === 'first\n', 15_000);
      expect(child.exitCode).toBeNull();
      expect((await cli(['exec', 'shell', '--', 'touch', '/tmp/go'])).code).toBe(0);
      const r = await done;
      expect([r.code, r.out.toString(), r.err]).toEqual([5, 'first\nsecond\n', 'warn\n']);
    });

    it('--timeout ends the command and says so', async () => {
      const t = await cli(['exec', 'shell', '--timeout', '1', '--', 'sh', '-c', 'echo $$ > /tmp/timed; exec sleep 60']);
      expect([t.code, t.err]).toEqual([1, 'peapod: command timed out after 1s\n']);
      const gone = async () => (await cli(['exec', 'shell', '--', 'sh', '-c', 'kill -0 "$(cat /tmp/timed)" 2>/dev/null || echo gone'])).out.toString() === 'gone\n';
      await waitFor('the timed-out command killed', gone, 15_000);
    });

    it('a reader that goes away (exec … | head) ends the CLI quietly as SIGPIPE would, and the command with it', async () => {
      const child = started(['exec', 'shell', '--', 'sh', '-c', 'echo $$ > /tmp/piped; exec yes']);
      let err = '';
      child.stderr!.on('data', (d: Buffer) => (err += d));
      child.stdout!.once('data', () => child.stdout!.destroy());
      const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
      expect([code, err]).toEqual([141, '']);
      const gone = async () => (await cli(['exec', 'shell', '--', 'sh', '-c', 'kill -0 "$(cat /tmp/piped)" 2>/dev/null || echo gone'])).out.toString() === 'gone\n';
      await waitFor('the command killed', gone, 15_000);
    });

    it('-i ends when the command does, with local input still open', async () => {
      const child = started(['exec', '-i', 'shell', '--', 'sh', '-c', 'head -c 5; exit 4']);
      const done = finished(child);
      child.stdin!.write('abcdefgh');
      const r = await Promise.race([done, sleep(15_000).then(() => undefined)]);
      expect(r, 'the CLI is still running').toBeDefined();
      expect([r!.code, r!.out.toString()]).toEqual([4, 'abcde']);
    });

    /** A shell command run by script(1) on a pseudo-terminal of its own, its input typed by the test. */
    const underTerminal = (inner: string) => {
      const child = spawn('script', ['-qec', inner, '/dev/null'], { stdio: 'pipe' });
      children.add(child);
      let out = '';
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      const exited = new Promise<number | null>((r) => child.once('close', (code) => r(code)));
      return {
        type: (text: string) => child.stdin!.write(text),
        see: (what: string, re: RegExp) =>
          waitFor(what, async () => re.test(out), 15_000).catch((err: Error) => {
            throw new Error(`${err.message}; the terminal showed ${JSON.stringify(out)}`);
          }),
        // Input stays open to the end: script(1) would type an end-of-file into the terminal.
        done: async () => {
          const code = await Promise.race([exited, sleep(15_000).then(() => 'still running')]);
          child.stdin!.end();
          return { code, out };
        },
      };
    };
    const execIt = (cmd: string) => `${peapodCommand.join(' ')} exec --socket ${s.socket} -it shell -- ${cmd}`;

    it('-it under a terminal: a tty of the local size in raw mode, resizes, and the terminal restored', async () => {
      const dir = mkdtempSync(join(base, 'tty-'));
      // The state of the local terminal is saved before and after the CLI.
      const term = underTerminal(
        `stty cols 91 rows 27; tty > ${dir}/pts; stty -g > ${dir}/before; ${execIt('sh')}; echo $? > ${dir}/code; stty -g > ${dir}/after`,
      );
      await term.see('a shell prompt', /\/ # /);
      term.type('tty; stty size\r');
      await term.see('the container terminal and its size', /\/dev\/pts\/\d+\r*\n27 91\r*\n/);

      // The local terminal changes size: the CLI gets SIGWINCH and passes the new size on.
      execFileSync('stty', ['-F', readFileSync(join(dir, 'pts'), 'utf8').trim(), 'cols', '100', 'rows', '30']);
      await sleep(300);
      term.type('stty size\r');
      await term.see('the new size', /\n30 100\r*\n/);

      // Raw mode: ^C reaches the container's shell (interrupting sleep) instead of killing the CLI.
      term.type('sleep 30\r');
      await sleep(500);
      term.type('\x03');
      term.type('echo after-$((6*7))\r');
      await term.see('the shell after ^C', /after-42/);

      term.type('exit 7\r');
      const { out } = await term.done();
      expect(readFileSync(join(dir, 'code'), 'utf8').trim(), out).toBe('7');
      expect(readFileSync(join(dir, 'after'), 'utf8')).toBe(readFileSync(join(dir, 'before'), 'utf8'));
    });

    // The server starts the helper only once the size has come, and the helper makes the terminal at that size.
    it('-it starts the command at the local terminal\'s size', async () => {
      // The size must be there when the command first looks, not arrive just after it started.
      // stty is the command itself (no shell starting first): a size sent after the start would often come too late.
      for (let i = 0; i < 6; i++) {
        const r = await underTerminal(`stty cols 61 rows 17; ${execIt('stty size')}`).done();
        expect(r.out).toMatch(/^17 61\r*\n$/);
        expect(r.code).toBe(0); // script -e: the CLI's code
      }
    });
  });

  describe('logs --tail and --timestamps', () => {
    it('--tail keeps the last lines of the log as it is (then follows with -f); --timestamps prefixes each message with its time as kubectl does; --since-time drops older lines', async () => {
      // A message longer than a CRI line (16 KiB) is split into P pieces: it takes one time, at its start.
      await apply('tailed', `  containers:\n${container('for i in 1 2 3 4 5; do echo line$i; done; head -c 20000 /dev/zero | tr "\\0" x; echo; exec sleep 3600')}`);
      await running('tailed');
      const log = join(base, 'logs', `default_tailed_${(await getPod('tailed')).metadata.uid}`, 'c', '0.log');
      await waitFor('the log written', async () => (readFileSync(log, 'utf8').match(/\n/g)?.length ?? 0) === 7);
      const long = 'x'.repeat(20000);
      // Lines of the file, as the kubelet counts them: the long message is two.
      const piece = (await cli(['logs', 'tailed', '--tail', '1'])).out.toString();
      expect(piece).toMatch(/^x+\n$/);
      expect(piece.length).toBeLessThan(long.length);
      const stamped = (await cli(['logs', 'pod/tailed', '--tail', '3', '--timestamps'])).out.toString().split('\n');
      const time = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d*[1-9])?Z /;
      expect(stamped.map((l) => time.test(l))).toEqual([true, true, false]);
      expect(stamped.map((l) => l.replace(time, ''))).toEqual(['line5', long, '']);
      // -f with --tail: the last lines, then what comes (written once the tail is out: the CLI follows).
      const child = started(['logs', '-f', 'tailed', '--tail', '1']);
      let out = '';
      child.stdout!.on('data', (d: Buffer) => (out += d));
      await waitFor('the tail', async () => out === piece);
      const before = new Date().toISOString();
      await k.exec('tailed', 'c', ['sh', '-c', 'echo more > /proc/1/fd/1']);
      await waitFor('what came after', async () => out === `${piece}more\n`);
      child.kill();
      // --since-time: what was written from then on only.
      expect((await cli(['logs', 'tailed', '--since-time', before])).out.toString()).toBe('more\n');
      await cli(['delete', 'tailed', '--force']);
    });
  });

  describe('logs of an unreadable log', () => {
    it('fails with the log named, the error and code 1, printing nothing', async () => {
      await apply('unreadable', `  containers:\n${container('echo once; exec sleep 3600')}`);
      await running('unreadable');
      const log = join(base, 'logs', `default_unreadable_${(await getPod('unreadable')).metadata.uid}`, 'c', '0.log');
      await waitFor('the log written', async () => readFileSync(log, 'utf8').includes('once'));
      // A directory where the file was: open() succeeds, read() fails (as root, no mode keeps a file from being read).
      renameSync(log, `${log}.moved`);
      mkdirSync(log);
      const r = await cli(['logs', 'unreadable']);
      expect({ code: r.code, out: r.out.toString() }).toEqual({ code: 1, out: '' });
      expect(r.err).toContain(`cannot read the log ${log}`);
      expect(r.err).toContain('EISDIR');
      expect(r.err).not.toMatch(/\n\s+at /); // a message, not a stack
      await cli(['delete', 'unreadable', '--force']);
    });
  });

  describe('logs -f', () => {
    // Each instance prints its number (kept in an emptyDir, which outlives the instances) on every line.
    // The first waits for /d/go, made once logs -f has its log open: a slow CLI start misses nothing.
    const numbered = (lines: number, tail: string) =>
      `n=$(cat /d/n 2>/dev/null || echo 0); echo $((n+1)) > /d/n; [ $n = 0 ] && until [ -e /d/go ]; do sleep 0.05; done; ` +
      `i=0; while [ $i -lt ${lines} ]; do echo "run $n line $i"; i=$((i+1)); [ $i = ${lines / 2} ] && sleep 0.3; done; ${tail}`;
    const volume = `  volumes: [{name: d, emptyDir: {}}]\n`;
    const mount = `\n      volumeMounts: [{name: d, mountPath: /d}]`;
    const expected = (runs: number, lines: number) =>
      Array.from({ length: runs }, (_, n) => Array.from({ length: lines }, (_, i) => `run ${n} line ${i}`)).flat();
    /** `logs -f NAME` started, with the first instance let go once the CLI has its log open. */
    const follow = async (name: string) => {
      const child = started(['logs', '-f', name]);
      const done = finished(child);
      const opened = () =>
        readdirSync(`/proc/${child.pid}/fd`).some((fd) => {
          try {
            return readlinkSync(`/proc/${child.pid}/fd/${fd}`).endsWith('/c/0.log');
          } catch {
            return false; // closed meanwhile
          }
        });
      await waitFor('logs -f to open the first log', async () => opened());
      const go = await cli(['exec', name, '--', 'touch', '/d/go']);
      expect(go.code, go.err).toBe(0);
      return { child, done };
    };

    it('goes on into each restarted instance\'s log, in order, with no line lost or repeated, and ends with the pod', async () => {
      // Two failures (restarted: OnFailure), then success: the pod is Succeeded.
      await apply('counter', `  restartPolicy: OnFailure\n${volume}  containers:\n${container(numbered(200, '[ $n -lt 2 ] && exit 1; exit 0'))}${mount}`);
      await running('counter');
      const { done } = await follow('counter');
      const r = await Promise.race([done, sleep(30_000).then(() => undefined)]);
      expect(r, 'logs -f did not end with the pod').toBeDefined();
      expect(r!.err).toBe('');
      expect(r!.code).toBe(0);
      expect(r!.out.toString().split('\n').slice(0, -1)).toEqual(expected(3, 200));
      const v = await getPod('counter');
      expect([v.status.phase, v.status.containerStatuses[0]!.restartCount]).toEqual(['Succeeded', 2]);
      await cli(['delete', 'counter']);
    });

    it('keeps following a restartPolicy Always container until the pod is deleted', async () => {
      await apply('looper', `${volume}  containers:\n${container(numbered(50, 'exit 0'))}${mount}`);
      await running('looper');
      const { child, done } = await follow('looper');
      let seen = '';
      child.stdout!.on('data', (d: Buffer) => (seen += d.toString()));
      await waitFor('the third instance in the log', async () => seen.includes('run 2 line 49\n'), 30_000);
      const del = await cli(['delete', 'looper']);
      expect(del.code, del.err).toBe(0);
      const r = await Promise.race([done, sleep(15_000).then(() => undefined)]);
      expect(r, 'logs -f did not end when the pod was deleted').toBeDefined();
      expect(r!.code, r!.err).toBe(0);
      const got = r!.out.toString().split('\n').slice(0, -1);
      // Whole instances in order; the instance running at the deletion may be cut short.
      expect(got.length).toBeGreaterThanOrEqual(150);
      expect(got).toEqual(expected(Math.ceil(got.length / 50), 50).slice(0, got.length));
    });
  });

  describe('as kubectl: the default container, several names, --force', () => {
    const named = (name: string, command: string) => container(command).replace('- name: c', `- name: ${name}`);
    const pod = (name: string, annotations = '') =>
      `apiVersion: v1\nkind: Pod\nmetadata:\n  name: ${name}\n${annotations}spec:\n  terminationGracePeriodSeconds: 1\n` +
      `  initContainers:\n${named('prep', 'true')}\n  containers:\n${named('a', 'echo from-a; exec sleep 3600')}\n${named('b', 'echo from-b; exec sleep 3600')}`;
    const bothRunning = (name: string) =>
      waitFor(`${name}'s two containers running`, async () => (await getPod(name)).status.containerStatuses.every((c) => !!c.state.running));

    it('logs and exec without -c act on the first container and say so on stderr, or on the one the annotation names', async () => {
      for (const [name, yaml] of [
        ['two', pod('two')],
        ['annotated', pod('annotated', '  annotations:\n    kubectl.kubernetes.io/default-container: b\n')],
      ] as const) {
        const r = await cli(['run', '-f', '-'], yaml);
        expect(r.code, r.err).toBe(0);
        await bothRunning(name);
      }
      const defaulted = 'Defaulted container "a" out of: a, b, prep (init)\n';
      await waitFor('a has logged', async () => (await cli(['logs', 'two'])).out.toString() === 'from-a\n');
      expect((await cli(['logs', 'two'])).err).toBe(defaulted);
      const e = await cli(['exec', 'two', '--', 'sh', '-c', 'echo $HOSTNAME']);
      expect([e.code, e.out.toString(), e.err]).toEqual([0, 'two\n', defaulted]);
      // kubectl's `logs NAME CONTAINER`.
      expect(await cli(['logs', 'two', 'b'])).toMatchObject({ code: 0, out: Buffer.from('from-b\n'), err: '' });
      // --all-containers: the init container (which wrote nothing), then each app container's, prefixed as kubectl prefixes them.
      expect(await cli(['logs', 'two', '--all-containers', '--prefix'])).toMatchObject({ code: 0, out: Buffer.from('[pod/two/a] from-a\n[pod/two/b] from-b\n'), err: '' });
      await waitFor('b has logged', async () => (await cli(['logs', 'annotated'])).out.toString() === 'from-b\n');
      expect((await cli(['logs', 'annotated'])).err).toBe('');
      for (const name of ['two', 'annotated']) await cli(['delete', name]);
    });

    it('delete goes on past a missing pod and exits 1; --force is "force deleted" and refuses a grace period', async () => {
      await apply('present', `  containers:\n${container('exec sleep 3600')}`);
      await running('present');
      const r = await cli(['delete', 'missing', 'present']);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/missing/);
      expect(r.out.toString()).toBe('pod "present" deleted\n');
      expect((await cli(['get', 'pods', 'present'])).code).toBe(1);
      const both = await cli(['delete', 'x', '--force', '--grace-period', '30']);
      expect([both.code, both.err.split('\n')[0]]).toEqual([2, 'peapod: delete: --force and --grace-period greater than 0 cannot be specified together']);
      await apply('forced', `  containers:\n${container('exec sleep 3600')}`);
      await running('forced');
      expect(await cli(['delete', 'forced', '--force'])).toMatchObject({ code: 0, out: Buffer.from('pod "forced" force deleted\n') });
    });

    it('delete --grace-period 0 without --force still sends SIGTERM first (kubectl makes it 1); --force does not', async () => {
      const out = mkdtempSync(join(base, 'grace-'));
      const spec = (name: string) =>
        `  volumes: [{name: out, hostPath: {path: ${out}}}]\n  containers:\n` +
        container(`trap "touch /out/${name}; exit 0" TERM; while true; do sleep 0.1; done`) +
        `\n      volumeMounts: [{name: out, mountPath: /out}]`;
      for (const name of ['graced', 'forced0']) {
        await apply(name, spec(name));
        await running(name);
      }
      expect((await cli(['delete', 'graced', '--grace-period', '0'])).code).toBe(0);
      expect(existsSync(join(out, 'graced'))).toBe(true);
      expect((await cli(['delete', 'forced0', '--grace-period', '0', '--force'])).code).toBe(0);
      expect(existsSync(join(out, 'forced0'))).toBe(false);
    });

    it('get -l and delete -l act on the pods a label selector picks; get -o name, jsonpath, custom-columns, --show-labels, --no-headers', async () => {
      const labelled = (name: string, labels: string) =>
        `apiVersion: v1\nkind: Pod\nmetadata:\n  name: ${name}\n  labels: {${labels}}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n${container('exec sleep 3600')}`;
      const r = await cli(['run', '-f', '-'], [labelled('sel-web1', 'app: web'), labelled('sel-web2', 'app: web, tier: front'), labelled('sel-db', 'app: db')].join('\n---\n'));
      expect(r.code, r.err).toBe(0);
      const names = async (...sel: string[]) =>
        (JSON.parse((await cli(['get', 'pods', ...sel, '-o', 'json'])).out.toString()).items as PodView[]).map((p) => p.metadata.name).sort();
      expect(await names('-l', 'app=web')).toEqual(['sel-web1', 'sel-web2']);
      expect(await names('-l', 'app in (web,db),!tier')).toEqual(['sel-db', 'sel-web1']);
      expect((await cli(['get', 'pods', '-l', 'app=web'])).out.toString()).toMatch(/^NAME\s.*\nsel-web1\s.*\nsel-web2\s[^\n]*\n$/);
      expect((await cli(['get', 'pods', '-l', 'app=web', '-o', 'name'])).out.toString()).toBe('pod/sel-web1\npod/sel-web2\n');
      expect((await cli(['get', 'pods', '-l', 'tier', '--show-labels', '--no-headers'])).out.toString()).toMatch(/^sel-web2\s+\S+\s+\S+\s+0\s+\S+\s+app=web,tier=front\n$/);
      const none = await cli(['get', 'pods', '-l', 'app=none']);
      expect([none.code, none.out.toString(), none.err]).toEqual([0, '', 'No resources found in default namespace.\n']);
      // kubectl's templates, on the list and on one pod.
      const tmpl = await cli(['get', 'pods', '-l', 'app', '-o', 'jsonpath={range .items[*]}{.metadata.name}={.metadata.labels.app}{"\\n"}{end}']);
      expect([tmpl.code, tmpl.out.toString()]).toEqual([0, 'sel-db=db\nsel-web1=web\nsel-web2=web\n']);
      expect((await cli(['get', 'pod', 'sel-web2', '-o=jsonpath={.metadata.labels.tier} {.kind}'])).out.toString()).toBe('front Pod');
      const cols = await cli(['get', 'pods', '-l', 'app=web', '-o', 'custom-columns=NAME:.metadata.name,TIER:.metadata.labels.tier']);
      expect(cols.out.toString()).toMatch(/^NAME\s+TIER\nsel-web1\s+<none>\nsel-web2\s+front\n$/);
      // The same from files, and the values as JSON.
      writeFileSync(join(base, 'cols.txt'), 'NAME TIER\n.metadata.name .metadata.labels.tier\n');
      writeFileSync(join(base, 'names.jsonpath'), '{.items[*].metadata.name}');
      expect((await cli(['get', 'pods', '-l', 'app=web', '-o', `custom-columns-file=${join(base, 'cols.txt')}`])).out.toString()).toBe(cols.out.toString());
      expect((await cli(['get', 'pods', '-l', 'app=web', '-o', `jsonpath-file=${join(base, 'names.jsonpath')}`])).out.toString()).toBe('sel-web1 sel-web2');
      expect((await cli(['get', 'pods', '-l', 'app=web', '-o', 'jsonpath-as-json={.items[*].metadata.name}'])).out.toString()).toBe('[\n    "sel-web1",\n    "sel-web2"\n]\n');
      const bad = await cli(['get', 'pods', '-o', 'jsonpath={.items[0}']);
      expect([bad.code, bad.out.toString(), bad.err]).toEqual([1, '', 'peapod: error parsing jsonpath {.items[0}, unterminated array\n']);
      const d = await cli(['delete', 'pods', '-l', 'app=web', '--force']);
      expect([d.code, d.out.toString()]).toEqual([0, 'pod "sel-web1" force deleted\npod "sel-web2" force deleted\n']);
      expect(await names('-l', 'app')).toEqual(['sel-db']);
      await cli(['delete', 'sel-db', '--force']);
    });

    it('get -w prints each change of the pods until killed, and a pod deleted once more; --watch-only skips the pods as they were', async () => {
      // Started before the pod exists: -w with no pod prints nothing yet (no "No resources found").
      const lists = answered('ListPods');
      const table = started(['get', 'pods', '-w', '-l', 'app=watched']);
      const tableDone = finished(table);
      let tableOut = '';
      table.stdout!.on('data', (d: Buffer) => (tableOut += d));
      await waitFor('the watch\'s first list', async () => answered('ListPods') > lists);
      await k.apply(
        `apiVersion: v1\nkind: Pod\nmetadata:\n  name: watched\n  labels: {app: watched}\nspec:\n  restartPolicy: Never\n  terminationGracePeriodSeconds: 1\n  containers:\n${container('until [ -e /tmp/go ]; do sleep 0.05; done; exit 3')}`,
      );
      await running('watched');
      await waitFor('the Running row', async () => /\nwatched\s+1\/1\s+Running\s+0\s/.test(tableOut));
      // Started while the pod runs: that state is not printed, only what follows.
      const gets = answered('GetPod');
      const phases = started(['get', 'pod', 'watched', '--watch-only', '-o', 'jsonpath={.metadata.name} {.status.phase}{"\\n"}']);
      const phasesDone = finished(phases);
      await waitFor('the watch\'s first get', async () => answered('GetPod') > gets);
      await k.exec('watched', 'c', ['touch', '/tmp/go']);
      await waitFor('the Error row', async () => /\nwatched\s+0\/1\s+Error\s+0\s/.test(tableOut));
      const printedBeforeDelete = tableOut.split('\n').length;
      expect((await cli(['delete', 'watched'])).code).toBe(0);
      await waitFor('the row of the pod deleted', async () => tableOut.split('\n').length > printedBeforeDelete);
      const polled = answered('ListPods');
      await waitFor('two more polls (nothing more to print)', async () => answered('ListPods') >= polled + 2);
      table.kill('SIGINT');
      phases.kill('SIGINT');
      const [t, p] = await Promise.all([tableDone, phasesDone]);
      expect(t.err).toBe('');
      const lines = t.out.toString().trimEnd().split('\n');
      expect(lines[0]).toMatch(/^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE$/);
      // Each row a change; the last one the pod as it was deleted (its final state, or Terminating).
      const cols = lines.slice(1).map((l) => l.split(/\s+/).slice(0, 4).join(' '));
      expect(cols.every((c) => c.startsWith('watched '))).toBe(true);
      expect(cols.indexOf('watched 1/1 Running 0')).toBeLessThan(cols.indexOf('watched 0/1 Error 0'));
      expect(cols.at(-1)).toMatch(/^watched 0\/1 (Error|Terminating) 0$/);
      expect(p.err).toBe('');
      const seen = p.out.toString().trimEnd().split('\n');
      expect(seen).not.toContain('watched Running');
      expect(seen.at(-1)).toBe('watched Failed');
    });

    it('takes a pod as pod/NAME in get, describe, logs, exec and delete', async () => {
      await apply('slashed', `  containers:\n${container('echo hello; exec sleep 3600')}`);
      await running('slashed');
      const got = await cli(['get', 'pod/slashed', '-o', 'json']);
      expect(JSON.parse(got.out.toString()).metadata.name).toBe('slashed');
      expect((await cli(['describe', 'pods/slashed'])).out.toString()).toMatch(/^Name:\s+slashed$/m);
      await waitFor('the log', async () => (await cli(['logs', 'po/slashed'])).out.toString() === 'hello\n');
      expect((await cli(['exec', 'pod/slashed', '--', 'hostname'])).out.toString()).toBe('slashed\n');
      expect(await cli(['delete', 'pod/slashed'])).toMatchObject({ code: 0, out: Buffer.from('pod "slashed" deleted\n') });
    });
  });
});
