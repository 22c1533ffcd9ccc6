// `peapod run / get / describe / logs / exec / delete`: kubectl-style pod
// commands over peapod.v1.Peapod, and CRI for exec (Exec and its WebSocket
// stream, as kubectl streams, with or without -i).

import * as grpc from '@grpc/grpc-js';
import { closeSync, openSync, promises as fsp, readFileSync, readSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { defaultConfig, durationMs } from '../config.js';
import { criLogRecords, type CriLogRecord } from '../container/logs.js';
import { criClient, peapodClient } from '../cri/client.js';
import type { ContainerLogPathResponse__Output } from '../cri/generated/peapod/v1/ContainerLogPathResponse.js';
import type { PodSummary__Output } from '../cri/generated/peapod/v1/PodSummary.js';
import { podSummary } from '../cri/pods.js';
import type { PodView } from '../pod/status.js';
import { connectRemoteCommand } from '../stream/client.js';
import { sleep } from '../util/time.js';
import { customColumnsRow, executeJsonPath, parseCustomColumns, parseCustomColumnsFile, parseJsonPath, type Column, type Template } from './jsonpath.js';
import { parseSelector, type Selector } from './selector.js';
import { UsageError } from './usage.js';

type Call = (method: string, req: unknown) => Promise<any>;

function peapodCall(socket: string): { call: Call; close(): void } {
  const client = peapodClient(socket);
  const methods = client.peapod as unknown as Record<string, (req: unknown) => Promise<unknown>>;
  return {
    call: (method, req) => methods[method]!(req).catch((err: grpc.ServiceError) => Promise.reject(rpcError(err, socket))),
    close: () => client.close(),
  };
}

/** A failed call, said for a person, keeping its gRPC code for callers that expect some (not `code`: main() reads that as a Node error code). */
class RpcError extends Error {
  constructor(
    message: string,
    readonly grpcCode: grpc.status,
  ) {
    super(message);
  }
}

function rpcError(e: grpc.ServiceError, socket: string): RpcError {
  if (e.code === grpc.status.UNAVAILABLE) {
    const details = e.details.replace(/\.?\s*Resolution note:\s*$/, '');
    return new RpcError(`cannot reach the peapod server at ${socket} (is "peapod serve" running?): ${details}`, e.code);
  }
  if (e.code === grpc.status.UNIMPLEMENTED) return new RpcError(`the server does not support this: ${e.details}`, e.code);
  return new RpcError(e.details || e.message, e.code);
}

const common = {
  socket: { type: 'string', short: 's' },
  namespace: { type: 'string', short: 'n' },
} as const;

/** kubectl's HumanDuration (apimachinery's duration.HumanDuration). */
export function age(ms: number): string {
  // A creation time in the future by more than a second: clocks disagree.
  if (ms < -1000) return '<invalid>';
  const s = Math.max(0, Math.floor(ms / 1000));
  const m = Math.floor(s / 60);
  const h = Math.floor(m / 60);
  const d = Math.floor(h / 24);
  const y = Math.floor(d / 365);
  if (s < 120) return `${s}s`;
  if (m < 10) return s % 60 === 0 ? `${m}m` : `${m}m${s % 60}s`;
  if (m < 180) return `${m}m`;
  if (h < 8) return m % 60 === 0 ? `${h}h` : `${h}h${m % 60}m`;
  if (h < 48) return `${h}h`;
  if (h < 24 * 8) return h % 24 === 0 ? `${d}d` : `${d}d${h % 24}h`;
  if (d < 365 * 2) return `${d}d`;
  if (y < 8) return d % 365 === 0 ? `${y}y` : `${y}y${d % 365}d`;
  return `${y}y`;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]! + 3))).join('').trimEnd() + '\n').join('');
}

const POD_TYPES = ['pod', 'pods', 'po'];

/** A pod as kubectl names one: NAME, or TYPE/NAME with TYPE a name of pods (another type is refused). */
function podArg(cmd: string, arg: string): string {
  const slash = arg.indexOf('/');
  if (slash < 0) return arg;
  if (!POD_TYPES.includes(arg.slice(0, slash))) throw new UsageError(`${cmd}: only pods are supported (got "${arg}")`);
  if (slash === arg.length - 1) throw new UsageError(`${cmd}: give a pod NAME after "${arg}"`);
  return arg.slice(slash + 1);
}

/** kubectl's "TYPE NAME…" or "TYPE/NAME…": the names given (none: all), TYPE a name of pods. */
function typedPodNames(cmd: string, positionals: string[]): string[] {
  const [first] = positionals;
  if (first?.includes('/')) return positionals.map((a) => podArg(cmd, a));
  if (!first) throw new UsageError(`${cmd}: use "${cmd} pods [NAME]" or "${cmd} pod/NAME"`);
  if (!POD_TYPES.includes(first)) throw new UsageError(`${cmd}: only pods are supported (got "${first}")`);
  return positionals.slice(1).map((a) => podArg(cmd, a));
}

/** The pods of a namespace ("": all), those a selector picks if one is given (their labels come with the full views). */
async function listPods(call: Call, namespace: string, detailed: boolean, selector: Selector | undefined): Promise<PodSummary__Output[]> {
  const pods = (await call('ListPods', { namespace, detailed: detailed || selector !== undefined })).pods as PodSummary__Output[];
  return selector ? pods.filter((p) => selector((JSON.parse(p.podJson) as PodView).metadata.labels)) : pods;
}

async function readInput(file: string): Promise<string> {
  if (file !== '-') return fsp.readFile(file, 'utf8');
  let text = '';
  for await (const chunk of process.stdin) text += chunk;
  return text;
}

// -------------------------------------------------------------- commands

async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: pflagArgs(argv),
    options: { ...common, filename: { type: 'string', short: 'f', multiple: true } },
    allowPositionals: true,
  });
  if (positionals.length > 0) throw new UsageError('run: give the manifest with -f FILE (peapod run -f pod.yaml)');
  const files = values.filename ?? [];
  if (files.length === 0) throw new UsageError('run: -f FILE is required ("-" reads stdin)');
  const texts = await Promise.all(files.map(readInput));
  const { call, close } = peapodCall(values.socket ?? defaultConfig.socket);
  try {
    const res = await call('ApplyPods', { manifest: texts.join('\n---\n') });
    for (const p of res.pods) process.stdout.write(`pod/${p.name} created${p.namespace !== 'default' ? ` (namespace ${p.namespace})` : ''}\n`);
    return 0;
  } finally {
    close();
  }
}

/** The formats of `-o FORMAT=ARG`: the argument is a template, or (`-file`) the file holding one. */
const TEMPLATE_FORMATS = ['jsonpath', 'jsonpath-as-json', 'jsonpath-file', 'custom-columns', 'custom-columns-file'];

/** `-o jsonpath=TEMPLATE`, `custom-columns-file=FILE`… as kubectl splits them: the format and its template (read from FILE). */
function splitOutput(out: string): [string, string] {
  const eq = out.indexOf('=');
  const format = eq < 0 ? out : out.slice(0, eq);
  if (!TEMPLATE_FORMATS.includes(format)) return [out, ''];
  const arg = eq < 0 ? '' : out.slice(eq + 1);
  if (arg === '') throw new Error(`get: ${format} format specified but no ${format.startsWith('jsonpath') ? 'template' : 'custom columns'} given`);
  if (!format.endsWith('-file')) return [format, arg];
  try {
    return [format, readFileSync(arg, 'utf8')];
  } catch (err) {
    throw new Error(`get: error reading --template ${arg}: ${(err as Error).message}`);
  }
}

/** kubectl's LABELS column: k=v joined by commas, sorted; <none> without any. */
function labelsColumn(labels: Record<string, string>): string {
  const keys = Object.keys(labels).sort();
  return keys.length > 0 ? keys.map((k) => `${k}=${labels[k]}`).join(',') : '<none>';
}

async function get(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: pflagArgs(argv),
    options: {
      ...common,
      output: { type: 'string', short: 'o' },
      'all-namespaces': { type: 'boolean', short: 'A' },
      selector: { type: 'string', short: 'l' },
      'show-labels': { type: 'boolean' },
      'no-headers': { type: 'boolean' },
      watch: { type: 'boolean', short: 'w' },
      'watch-only': { type: 'boolean' },
    },
    allowPositionals: true,
  });
  const [name, ...more] = typedPodNames('get', positionals);
  const selector = values.selector === undefined ? undefined : parseSelector(values.selector);
  if (name && selector) throw new UsageError('get: a NAME cannot be given with a selector (-l)');
  const out = values.output ?? '';
  const [format, template] = splitOutput(out);
  if (!['', 'wide', 'yaml', 'json', 'name', ...TEMPLATE_FORMATS].includes(format)) {
    throw new UsageError(
      `get: -o must be wide, name, yaml, json, jsonpath=TEMPLATE, jsonpath-as-json=TEMPLATE, jsonpath-file=FILE, custom-columns=SPEC or custom-columns-file=FILE (got "${out}")`,
    );
  }
  const all = values['all-namespaces'] ?? false;
  if (name && all) throw new UsageError('get: a resource cannot be retrieved by name across all namespaces');
  if (more.length > 0) throw new UsageError('get: one pod NAME at a time');
  const watchOnly = values['watch-only'] ?? false;
  const watch = (values.watch ?? false) || watchOnly;
  // Checked before any call, as kubectl makes its printer first.
  const printer = new PodPrinter({
    format,
    jsonPath: format.startsWith('jsonpath') ? parseJsonPath(template) : undefined,
    columns: format === 'custom-columns' ? parseCustomColumns(template) : format === 'custom-columns-file' ? parseCustomColumnsFile(template) : undefined,
    namespaces: all,
    labels: values['show-labels'] ?? false,
    headers: !(values['no-headers'] ?? false),
  });
  const ns = all ? '' : (values.namespace ?? 'default');
  const { call, close } = peapodCall(values.socket ?? defaultConfig.socket);
  const current = async (): Promise<PodSummary__Output[]> => {
    if (!name) return listPods(call, ns, printer.needsViews || watch, selector);
    return [podSummary(JSON.parse((await call('GetPod', { namespace: ns || 'default', name })).podJson) as PodView, true)];
  };
  try {
    const pods = await current();
    if (!watch) {
      // Only the human-readable forms say so: the others print an empty List (custom columns, their headers).
      if (pods.length === 0 && ['', 'wide', 'name'].includes(format)) {
        process.stderr.write(all ? 'No resources found\n' : `No resources found in ${ns} namespace.\n`);
        return 0;
      }
      process.stdout.write(printer.all(pods, name !== undefined));
      return 0;
    }
    // As kubectl -w: the pods as they are (unless --watch-only), one at a time, then each change as it is seen.
    const seen = new Map<string, { key: string; pod: PodSummary__Output }>();
    const update = (now: PodSummary__Output[], print: boolean) => {
      const uids = new Set<string>();
      for (const pod of now) {
        const view = JSON.parse(pod.podJson) as PodView;
        uids.add(view.metadata.uid);
        const key = JSON.stringify([view.metadata.labels, view.metadata.annotations, view.status]);
        if (seen.get(view.metadata.uid)?.key === key) continue;
        seen.set(view.metadata.uid, { key, pod });
        if (print) process.stdout.write(printer.one(pod));
      }
      // A pod gone is printed once more, as its deletion event shows it.
      for (const [uid, { pod }] of seen) {
        if (uids.has(uid)) continue;
        seen.delete(uid);
        process.stdout.write(printer.one(pod));
      }
    };
    update(pods, !watchOnly);
    for (;;) {
      await sleep(WATCH_POLL_MS);
      const now = await current().catch((err: unknown) => {
        // The one pod watched is gone: it was printed a last time, and another of its name may come.
        if (name && err instanceof RpcError && err.grpcCode === grpc.status.NOT_FOUND) return [];
        throw err;
      });
      update(now, true);
    }
  } finally {
    close();
  }
}

/** How often `get -w` looks for changes (the server has no watch call: a poll of its in-memory state is cheap). */
const WATCH_POLL_MS = 250;

export interface PrinterOptions {
  format: string;
  jsonPath: Template | undefined;
  columns: Column[] | undefined;
  namespaces: boolean;
  labels: boolean;
  headers: boolean;
}

/** kubectl's printers for `get`: a whole result at once, or (for -w) one pod at a time, headers once. */
export class PodPrinter {
  /** Whether `one` has printed before: the headers (and a YAML document) come once. */
  private started = false;

  constructor(private readonly o: PrinterOptions) {}

  /** Whether it needs the pods' full views (ListPods gives only summaries otherwise). */
  get needsViews(): boolean {
    return ['yaml', 'json'].includes(this.o.format) || this.o.jsonPath !== undefined || this.o.columns !== undefined || this.o.labels;
  }

  all(pods: PodSummary__Output[], single: boolean): string {
    const { format, jsonPath, columns } = this.o;
    const objs = () => pods.map((p) => JSON.parse(p.podJson) as PodView);
    if (format === 'name') return pods.map((p) => `pod/${p.name}\n`).join('');
    if (format === 'json' || format === 'yaml' || jsonPath) {
      const doc = single ? objs()[0] : { apiVersion: 'v1', kind: 'List', items: objs() };
      if (jsonPath) return this.template(jsonPath, doc);
      return format === 'json' ? JSON.stringify(doc, null, 2) + '\n' : stringify(doc);
    }
    const rows = columns ? objs().map((o) => customColumnsRow(columns, o)) : pods.map((p) => this.row(p));
    return table(this.o.headers ? [this.head(), ...rows] : rows);
  }

  one(pod: PodSummary__Output): string {
    const { format, jsonPath, columns } = this.o;
    const first = !this.started;
    this.started = true;
    if (format === 'name') return `pod/${pod.name}\n`;
    const view = () => JSON.parse(pod.podJson) as PodView;
    if (jsonPath) return this.template(jsonPath, view());
    if (format === 'json') return JSON.stringify(view(), null, 2) + '\n';
    if (format === 'yaml') return (first ? '' : '---\n') + stringify(view());
    const row = columns ? customColumnsRow(columns, view()) : this.row(pod);
    return table(first && this.o.headers ? [this.head(), row] : [row]);
  }

  private template(jsonPath: Template, doc: unknown): string {
    return executeJsonPath(jsonPath, doc, this.o.format === 'jsonpath-as-json');
  }

  private head(): string[] {
    if (this.o.columns) return this.o.columns.map((c) => c.header);
    const wide = this.o.format === 'wide';
    return [
      ...(this.o.namespaces ? ['NAMESPACE'] : []),
      'NAME',
      'READY',
      'STATUS',
      'RESTARTS',
      'AGE',
      ...(wide ? ['IP', 'NODE', 'NOMINATED NODE', 'READINESS GATES'] : []),
      ...(this.o.labels ? ['LABELS'] : []),
    ];
  }

  private row(p: PodSummary__Output): string[] {
    return [
      ...(this.o.namespaces ? [p.namespace] : []),
      p.name,
      p.ready,
      p.status,
      Number(p.lastRestartMs) > 0 ? `${p.restarts} (${age(Date.now() - Number(p.lastRestartMs))} ago)` : String(p.restarts),
      age(Date.now() - Number(p.createdAtMs)),
      // No scheduler nominates a node here, and readinessGates are refused at apply.
      ...(this.o.format === 'wide' ? [p.ip || '<none>', p.node, '<none>', '<none>'] : []),
      ...(this.o.labels ? [labelsColumn((JSON.parse(p.podJson) as PodView).metadata.labels)] : []),
    ];
  }
}

function stateLines(label: string, st: PodView['status']['containerStatuses'][number]['state'], indent: string): string {
  if (st.running) return `${indent}${label}:\tRunning\n${indent}  Started:\t${st.running.startedAt}\n`;
  if (st.waiting) return `${indent}${label}:\tWaiting\n${indent}  Reason:\t${st.waiting.reason}\n${st.waiting.message ? `${indent}  Message:\t${st.waiting.message}\n` : ''}`;
  if (st.terminated) {
    const t = st.terminated;
    return (
      `${indent}${label}:\tTerminated\n${indent}  Reason:\t${t.reason}\n${indent}  Exit Code:\t${t.exitCode}\n` +
      (t.signal ? `${indent}  Signal:\t${t.signal}\n` : '') +
      `${indent}  Started:\t${t.startedAt}\n${indent}  Finished:\t${t.finishedAt}\n`
    );
  }
  return '';
}

/** A probe of the manifest as kubectl describe prints it, the API's defaults filled in. */
export function describeProbe(p: Record<string, any>): string {
  const n = (key: string, def: number) => (typeof p[key] === 'number' ? p[key] : def);
  const attrs = `delay=${n('initialDelaySeconds', 0)}s timeout=${n('timeoutSeconds', 1)}s period=${n('periodSeconds', 10)}s #success=${n('successThreshold', 1)} #failure=${n('failureThreshold', 3)}`;
  if (p.exec) return `exec [${(p.exec.command ?? []).join(' ')}] ${attrs}`;
  if (p.httpGet) {
    const g = p.httpGet;
    const host = String(g.host ?? '');
    return `http-get ${String(g.scheme ?? 'HTTP').toLowerCase()}://${host.includes(':') ? `[${host}]` : host}:${g.port}${g.path ?? '/'} ${attrs}`;
  }
  if (p.tcpSocket) return `tcp-socket ${p.tcpSocket.host ?? ''}:${p.tcpSocket.port} ${attrs}`;
  if (p.grpc) return `grpc <pod>:${p.grpc.port} ${p.grpc.service ?? ''} ${attrs}`;
  return `unknown ${attrs}`;
}

export function describePod(v: PodView): string {
  const spec = v.spec as { containers?: Array<Record<string, any>>; initContainers?: Array<Record<string, any>> };
  let s = '';
  s += `Name:\t${v.metadata.name}\nNamespace:\t${v.metadata.namespace}\nNode:\t${v.node}/${v.status.hostIP}\n`;
  s += `Start Time:\t${v.status.startTime || '<none>'}\n`;
  s += `Labels:\t${Object.entries(v.metadata.labels).map(([k, x]) => `${k}=${x}`).join('\n\t') || '<none>'}\n`;
  s += `Annotations:\t${Object.entries(v.metadata.annotations).map(([k, x]) => `${k}: ${x}`).join('\n\t') || '<none>'}\n`;
  s += `Status:\t${v.status.display === 'Terminating' ? 'Terminating' : v.status.phase}\n`;
  if (v.status.reason) s += `Reason:\t${v.status.reason}\n`;
  if (v.status.message) s += `Message:\t${v.status.message}\n`;
  s += `IP:\t${v.status.podIP || '<none>'}\nUID:\t${v.metadata.uid}\nSandbox:\t${v.sandboxId || '<none>'}\n`;
  const section = (title: string, list: PodView['status']['containerStatuses'], specs: Array<Record<string, any>> | undefined) => {
    if (list.length === 0) return;
    s += `${title}:\n`;
    for (const c of list) {
      const cs = specs?.find((x) => x.name === c.name) ?? {};
      s += `  ${c.name}:\n    Container ID:\t${c.containerID || '<none>'}\n    Image:\t${c.image}\n`;
      if (cs.command) s += `    Command:\t${JSON.stringify(cs.command)}\n`;
      if (cs.args) s += `    Args:\t${JSON.stringify(cs.args)}\n`;
      s += stateLines('State', c.state, '    ');
      if (c.lastState.terminated || c.lastState.waiting || c.lastState.running) s += stateLines('Last State', c.lastState, '    ');
      s += `    Ready:\t${c.ready ? 'True' : 'False'}\n    Restart Count:\t${c.restartCount}\n`;
      for (const kind of ['liveness', 'readiness', 'startup']) {
        const probe = cs[`${kind}Probe`];
        if (probe) s += `    ${kind[0]!.toUpperCase()}${kind.slice(1)}:\t${describeProbe(probe)}\n`;
      }
      for (const [kind, p] of Object.entries(c.probes)) {
        s += `    ${kind[0]!.toUpperCase()}${kind.slice(1)} probe:\t${p.result} (successes ${p.consecutiveSuccesses}, failures ${p.consecutiveFailures}${p.lastProbeTime ? `, last ${p.lastProbeTime}` : ''})${p.message ? `: ${p.message}` : ''}\n`;
      }
    }
  };
  section('Init Containers', v.status.initContainerStatuses, spec.initContainers);
  section('Containers', v.status.containerStatuses, spec.containers);
  s += `Conditions:\n  Type\tStatus\n${v.status.conditions.map((c) => `  ${c.type}\t${c.status}\n`).join('')}`;
  s += 'Events:\n';
  if (v.events.length === 0) s += '  <none>\n';
  else {
    const rows = [['  Type', 'Reason', 'Age', 'From', 'Message'], ['  ----', '------', '----', '----', '-------']];
    for (const e of v.events) {
      const since = (t: string) => age(Date.now() - Date.parse(t));
      // As kubectl: a repeated event's age is its latest, then how many over how long.
      const when = e.count > 1 ? `${since(e.lastTimestamp)} (x${e.count} over ${since(e.firstTimestamp)})` : since(e.firstTimestamp);
      rows.push([`  ${e.type}`, e.reason, when, e.object === 'pod' ? 'peapod' : `peapod ${e.object}`, e.message]);
    }
    s += table(rows);
  }
  // Tab-separated fields aligned like kubectl's describe.
  return s
    .split('\n')
    .map((l) => {
      const i = l.indexOf('\t');
      if (i < 0) return l;
      const key = l.slice(0, i);
      return `${key}${' '.repeat(Math.max(1, 22 - key.length))}${l.slice(i + 1).replace(/\t/g, ' ')}`;
    })
    .join('\n');
}

async function describe(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: pflagArgs(argv), options: { ...common }, allowPositionals: true });
  const [name, ...more] = typedPodNames('describe', positionals);
  if (!name || more.length > 0) throw new UsageError('describe: use "describe pod NAME" or "describe pod/NAME"');
  const { call, close } = peapodCall(values.socket ?? defaultConfig.socket);
  try {
    const v = JSON.parse((await call('GetPod', { namespace: values.namespace ?? 'default', name })).podJson) as PodView;
    process.stdout.write(describePod(v));
    return 0;
  } finally {
    close();
  }
}


/** A CRI log time as kubectl prints it with --timestamps (Go's RFC3339Nano: the fraction's trailing zeros dropped). */
export function kubectlTimestamp(time: string): string {
  const m = /^(.*T\d\d:\d\d:\d\d)(\.\d+)?(.*)$/.exec(time);
  if (!m) return time;
  const fraction = (m[2] ?? '').replace(/0+$/, '');
  return m[1] + (fraction === '.' ? '' : fraction) + m[3];
}

interface LogOptions {
  /** Prefix each message with its time, as kubectl --timestamps. */
  timestamps: boolean;
  /** Of what is written when the log is opened, only the last this many lines (-1: all), as kubectl --tail. */
  tail: number;
  /** Only messages written at or after this time (ms since the epoch; 0: all), as kubectl --since and --since-time. */
  since: number;
  /** Put before each message (kubectl --prefix: "[pod/NAME/CONTAINER] "). */
  prefix: string;
}

function unreadable(path: string, err: unknown): Error {
  return new Error(`cannot read the log ${path}: ${(err as Error).message}`);
}

/** Prints a CRI log file's messages, whole lines at a time, as they are written. */
class LogReader {
  private pos = 0;
  private pending = Buffer.alloc(0);
  private atMessageStart = true;
  /** The lines kept for --tail until the first drain ends; null once printed. */
  private tailed: CriLogRecord[] | null;

  private constructor(
    private readonly path: string,
    private readonly fd: number,
    private readonly opts: LogOptions,
  ) {
    this.tailed = opts.tail >= 0 ? [] : null;
  }

  /** null when the file is not there (an instance that wrote nothing yet, or a log already removed); another failure (EACCES) is an error. */
  static open(path: string, opts: LogOptions): LogReader | null {
    try {
      return new LogReader(path, openSync(path, 'r'), opts);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw unreadable(path, err);
    }
  }

  /** Everything written so far; a line not finished yet waits for its end (it may be cut inside a character). */
  drain(): void {
    const buf = Buffer.alloc(64 * 1024);
    for (;;) {
      let n: number;
      try {
        n = readSync(this.fd, buf, 0, buf.length, this.pos);
      } catch (err) {
        throw unreadable(this.path, err); // EISDIR, EIO: open() alone does not tell
      }
      if (n <= 0) break;
      this.pos += n;
      this.pending = Buffer.concat([this.pending, buf.subarray(0, n)]);
      const cut = this.pending.lastIndexOf(0x0a);
      if (cut >= 0) {
        this.take(criLogRecords(this.pending.subarray(0, cut + 1).toString('utf8')));
        this.pending = this.pending.subarray(cut + 1);
      }
    }
    if (this.tailed) {
      const last = this.tailed;
      this.tailed = null;
      this.print(last);
    }
  }

  private take(records: CriLogRecord[]): void {
    if (!this.tailed) return this.print(records);
    // Lines of the file, as the kubelet counts them for --tail.
    this.tailed.push(...records);
    this.tailed.splice(0, Math.max(0, this.tailed.length - this.opts.tail));
  }

  private print(records: CriLogRecord[]): void {
    let out = '';
    for (const r of records) {
      // As the kubelet, after --tail: lines older than --since are dropped.
      if (this.opts.since > 0 && Date.parse(r.time) < this.opts.since) continue;
      if (this.atMessageStart) out += this.opts.prefix + (this.opts.timestamps ? `${kubectlTimestamp(r.time)} ` : '');
      out += r.partial ? r.content : r.content + '\n';
      this.atMessageStart = !r.partial;
    }
    if (out) process.stdout.write(out);
  }

  close(): void {
    closeSync(this.fd);
  }
}

const DEFAULT_CONTAINER_ANNOTATION = 'kubectl.kubernetes.io/default-container';

/**
 * The container that `logs` and `exec` without -c act on, as kubectl picks
 * it: the one the default-container annotation names, else the first; with
 * a choice to make, said on stderr as kubectl says it.
 */
function defaultContainer(v: PodView): string {
  const apps = v.status.containerStatuses.map((c) => c.name);
  const inits = v.status.initContainerStatuses.map((c) => c.name);
  const named = v.metadata.annotations[DEFAULT_CONTAINER_ANNOTATION];
  if (named) {
    if (apps.includes(named) || inits.includes(named)) return named;
    process.stderr.write(`Default container name "${named}" not found in pod ${v.metadata.name}\n`);
  }
  const first = apps[0]!;
  if (apps.length > 1 || inits.length > 0) {
    process.stderr.write(`Defaulted container "${first}" out of: ${[...apps, ...inits.map((n) => `${n} (init)`)].join(', ')}\n`);
  }
  return first;
}

/** --since (a duration back from now) or --since-time (RFC 3339) as a time in ms; 0 without either. */
function logsSince(since: string | undefined, sinceTime: string | undefined): number {
  if (since !== undefined && sinceTime !== undefined) throw new UsageError('logs: at most one of --since and --since-time may be given');
  if (since !== undefined) {
    const ms = durationMs(since);
    if (ms === undefined || ms <= 0) throw new UsageError(`logs: --since must be a duration such as 5s, 2m or 3h (got "${since}")`);
    return Date.now() - ms;
  }
  if (sinceTime !== undefined) {
    const t = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(sinceTime) ? Date.parse(sinceTime) : NaN;
    if (Number.isNaN(t)) throw new UsageError(`logs: --since-time must be an RFC 3339 time such as 2026-11-24T10:00:00Z (got "${sinceTime}")`);
    return t;
  }
  return 0;
}

/**
 * A command line as kubectl's flag parser reads it, for parseArgs: `-o=json`
 * is `-o json` (parseArgs would take "=json"), and `--tail -1` keeps its
 * negative value (parseArgs refuses a value starting with a dash unless
 * joined with "="). Nothing after `--` is touched.
 */
function pflagArgs(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      out.push(...argv.slice(i));
      break;
    }
    if (/^-[A-Za-z]=/.test(a)) out.push(a.slice(0, 2), a.slice(3));
    else if (a === '--tail' && /^-\d+$/.test(argv[i + 1] ?? '')) out.push(`${a}=${argv[++i]}`);
    else out.push(a);
  }
  return out;
}

async function logs(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: pflagArgs(argv),
    options: {
      ...common,
      container: { type: 'string', short: 'c' },
      follow: { type: 'boolean', short: 'f' },
      previous: { type: 'boolean', short: 'p' },
      tail: { type: 'string' },
      timestamps: { type: 'boolean' },
      since: { type: 'string' },
      'since-time': { type: 'string' },
      'all-containers': { type: 'boolean' },
      prefix: { type: 'boolean' },
    },
    allowPositionals: true,
  });
  if (values.tail !== undefined && !/^(-1|\d+)$/.test(values.tail)) throw new UsageError(`logs: --tail must be a number of lines, or -1 for all (got "${values.tail}")`);
  // kubectl's forms: logs NAME, logs pod NAME, logs NAME CONTAINER.
  const [arg, positionalContainer] = positionals[0] === 'pod' ? positionals.slice(1) : positionals;
  if (!arg) throw new UsageError('logs: give a pod NAME');
  const name = podArg('logs', arg);
  const all = values['all-containers'] ?? false;
  if (all && (values.container ?? positionalContainer) !== undefined) throw new UsageError('logs: --all-containers=true should not be specified with a container name');
  const opts: LogOptions = { timestamps: values.timestamps ?? false, tail: Number(values.tail ?? -1), since: logsSince(values.since, values['since-time']), prefix: '' };
  const namespace = values.namespace ?? 'default';
  const { call, close } = peapodCall(values.socket ?? defaultConfig.socket);
  try {
    let containers: string[];
    if (all) {
      // As kubectl: init containers first, then the app containers, in spec order.
      const v = JSON.parse((await call('GetPod', { namespace, name })).podJson) as PodView;
      containers = [...v.status.initContainerStatuses, ...v.status.containerStatuses].map((c) => c.name);
    } else {
      containers = [values.container ?? positionalContainer ?? defaultContainer(JSON.parse((await call('GetPod', { namespace, name })).podJson) as PodView)];
    }
    const read = (container: string) =>
      containerLog(call, { namespace, name, container, previous: values.previous ?? false }, { ...opts, prefix: values.prefix ? `[pod/${name}/${container}] ` : '' }, values.follow ?? false);
    if (!all) return (await read(containers[0]!)) ? 0 : 1;
    // Followed, they are read side by side, as kubectl does; otherwise one after the other.
    const done: boolean[] = [];
    if (values.follow) done.push(...(await Promise.all(containers.map(read))));
    else for (const c of containers) done.push(await read(c));
    return done.every(Boolean) ? 0 : 1;
  } finally {
    close();
  }
}

/**
 * Prints one container's log; with `follow`, instance after instance, each
 * log from its beginning, until no instance will follow the one read (or the
 * pod is gone). false when the container has no log to read yet (said on
 * stderr, as kubectl says it), true once printed.
 */
async function containerLog(call: Call, req: { namespace: string; name: string; container: string; previous: boolean }, opts: LogOptions, follow: boolean): Promise<boolean> {
  let cur: ContainerLogPathResponse__Output;
  try {
    cur = (await call('ContainerLogPath', req)) as ContainerLogPathResponse__Output;
  } catch (err) {
    if (!(err instanceof RpcError && err.grpcCode === grpc.status.NOT_FOUND)) throw err;
    process.stderr.write(`peapod: ${err.message}\n`);
    return false;
  }
  let reader = LogReader.open(cur.path, opts);
  try {
    reader?.drain();
    if (!follow || req.previous) return true;
    // --tail applies to the log being read when the command starts; later instances are read whole.
    const next: LogOptions = { ...opts, tail: -1 };
    let attempt = cur.attempt;
    for (;;) {
      if (cur.attempt > attempt) {
        // A newer instance exists, so the one read has exited and its log is complete.
        reader?.drain();
        reader?.close();
        attempt++;
        // Instances log side by side as <attempt>.log; one two restarts behind may be gone already.
        reader = LogReader.open(join(dirname(cur.path), `${attempt}.log`), next);
        reader?.drain();
        continue;
      }
      if (cur.last) {
        reader?.drain();
        return true;
      }
      await sleep(250);
      reader?.drain();
      try {
        cur = (await call('ContainerLogPath', { ...req, container: cur.container })) as ContainerLogPathResponse__Output;
      } catch (err) {
        if (!(err instanceof RpcError && err.grpcCode === grpc.status.NOT_FOUND)) throw err;
        // Deleted: what was written before the log went is still there to read.
        reader?.drain();
        return true;
      }
    }
  } finally {
    reader?.close();
  }
}

/**
 * An exec as kubectl runs one: output copied out as the command writes it;
 * with -i the local stdin copied in (its end closes the command's); with a
 * terminal, the local one in raw mode (keys, ^C included, go to the command)
 * and its size sent at once and on every change. A timeout drops the stream,
 * which makes the server kill the command.
 */
async function streamExec(url: string, opts: { stdin: boolean; tty: boolean; timeoutS: number }): Promise<number> {
  const { stdin, stdout } = process;
  const remote = await connectRemoteCommand(url, { stdin: opts.stdin ? stdin : null, stdout, stderr: process.stderr });
  let timedOut = false;
  const timer =
    opts.timeoutS > 0
      ? setTimeout(() => {
          timedOut = true;
          remote.close();
        }, opts.timeoutS * 1000)
      : undefined;
  const exited = remote.exitCode.catch((err: unknown) => {
    throw timedOut ? new Error(`command timed out after ${opts.timeoutS}s`) : err;
  });
  if (!opts.tty) return exited.finally(() => clearTimeout(timer));
  const sendSize = () => {
    if (stdout.isTTY) remote.resize(stdout.columns, stdout.rows);
  };
  // Killed while raw, the terminal would stay raw: restore it first.
  const onSignal = (signal: NodeJS.Signals) => {
    stdin.setRawMode(false);
    process.exit(128 + osConstants.signals[signal]);
  };
  const signals: NodeJS.Signals[] = ['SIGTERM', 'SIGHUP'];
  stdin.setRawMode(true);
  for (const sig of signals) process.on(sig, onSignal);
  stdout.on('resize', sendSize);
  try {
    sendSize();
    return await exited;
  } finally {
    clearTimeout(timer);
    stdout.off('resize', sendSize);
    for (const sig of signals) process.off(sig, onSignal);
    stdin.setRawMode(false);
  }
}

async function exec(argv: string[]): Promise<number> {
  const dash = argv.indexOf('--');
  const own = dash >= 0 ? argv.slice(0, dash) : argv;
  const cmd = dash >= 0 ? argv.slice(dash + 1) : [];
  const { values, positionals } = parseArgs({
    args: pflagArgs(own),
    options: { ...common, container: { type: 'string', short: 'c' }, stdin: { type: 'boolean', short: 'i' }, tty: { type: 'boolean', short: 't' }, timeout: { type: 'string' } },
    allowPositionals: true,
  });
  if (!positionals[0]) throw new UsageError('exec: give a pod NAME');
  const name = podArg('exec', positionals[0]);
  if (cmd.length === 0) throw new UsageError('exec: give the command after "--" (peapod exec NAME -- ls /)');
  if (values.timeout !== undefined && !/^\d+$/.test(values.timeout)) {
    throw new UsageError(`exec: --timeout must be a whole number of seconds (got "${values.timeout}")`);
  }
  const socket = values.socket ?? defaultConfig.socket;
  const { call, close } = peapodCall(socket);
  let id: string;
  try {
    const v = JSON.parse((await call('GetPod', { namespace: values.namespace ?? 'default', name })).podJson) as PodView;
    const all = [...v.status.containerStatuses, ...v.status.initContainerStatuses];
    const wanted = values.container ?? defaultContainer(v);
    const c = all.find((x) => x.name === wanted);
    if (!c) throw new Error(`container ${wanted} not found in pod ${name}`);
    if (!c.state.running) throw new Error(`container ${c.name} in pod ${name} is not running`);
    id = c.containerID.replace(/^peapod:\/\//, '');
  } finally {
    close();
  }
  // As in kubectl: a terminal needs -i, and a local terminal to drive it.
  const tty = !!values.tty && !!values.stdin && process.stdin.isTTY;
  if (values.tty && values.stdin && !tty) process.stderr.write('Unable to use a TTY - input is not a terminal or the right kind of file\n');
  const cri = criClient(socket);
  const rpc = <T>(p: Promise<T>) =>
    p.catch((err: grpc.ServiceError) => {
      throw rpcError(err, socket);
    });
  let url: string;
  try {
    url = (await rpc(cri.runtime.Exec({ containerId: id, cmd, tty, stdin: !!values.stdin, stdout: true, stderr: !tty }))).url;
  } finally {
    cri.close();
  }
  return streamExec(url, { stdin: !!values.stdin, tty, timeoutS: Number(values.timeout ?? 0) });
}

async function del(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: pflagArgs(argv),
    options: { ...common, 'grace-period': { type: 'string' }, force: { type: 'boolean' }, selector: { type: 'string', short: 'l' } },
    allowPositionals: true,
  });
  let names = (POD_TYPES.includes(positionals[0] ?? '') ? positionals.slice(1) : positionals).map((a) => podArg('delete', a));
  const selector = values.selector === undefined ? undefined : parseSelector(values.selector);
  if (names.length > 0 && selector) throw new UsageError('delete: a NAME cannot be given with a selector (-l)');
  if (names.length === 0 && !selector) throw new UsageError('delete: give a pod NAME, or a selector (-l)');
  const gp = values['grace-period'];
  if (gp !== undefined && !/^-?\d+$/.test(gp)) throw new UsageError(`delete: --grace-period must be a number of seconds (got "${gp}")`);
  const force = values.force ?? false;
  let grace = gp === undefined ? -1 : Number(gp);
  // As kubectl: --force is an immediate deletion (the server still waits for the kill), which a grace
  // period contradicts; 0 without it is 1 (no accidental SIGKILL, no preStop skipped).
  if (force && grace > 0) throw new UsageError('delete: --force and --grace-period greater than 0 cannot be specified together');
  if (grace === 0 && !force) grace = 1;
  const namespace = values.namespace ?? 'default';
  const { call, close } = peapodCall(values.socket ?? defaultConfig.socket);
  let failed = false;
  try {
    if (selector) {
      names = (await listPods(call, namespace, false, selector)).map((p) => p.name);
      if (names.length === 0) process.stderr.write('No resources found\n');
    }
    // As kubectl, every name is tried; one that fails is reported and makes the exit status 1.
    for (const name of names) {
      try {
        await call('DeletePod', { namespace, name, gracePeriodSeconds: String(grace), force });
        process.stdout.write(`pod "${name}" ${force ? 'force deleted' : 'deleted'}\n`);
      } catch (err) {
        if (!(err instanceof RpcError) || err.grpcCode === grpc.status.UNAVAILABLE) throw err;
        process.stderr.write(`peapod: ${err.message}\n`);
        failed = true;
      }
    }
    return failed ? 1 : 0;
  } finally {
    close();
  }
}

export async function podCommand(cmd: string, argv: string[]): Promise<number> {
  switch (cmd) {
    case 'run':
      return run(argv);
    case 'get':
      return get(argv);
    case 'describe':
      return describe(argv);
    case 'logs':
      return logs(argv);
    case 'exec':
      return exec(argv);
    case 'delete':
      return del(argv);
  }
  throw new UsageError(`unknown command "${cmd}"`);
}
