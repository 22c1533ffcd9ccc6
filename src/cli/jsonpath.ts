// kubectl's JSONPath templates (`-o jsonpath=…`, `-o custom-columns=…`),
// with the semantics of client-go's util/jsonpath as kubectl runs it (missing
// keys allowed): `{.a.b}`, `[n]`, `[a:b:c]`, `[*]`, `.*`, `..name`, unions
// `[0,1]`/`['a','b']`, filters `[?(@.x=="y")]`, `{range …}…{end}` and quoted
// text. Values print as Go prints them: strings raw, objects as compact JSON.

class JsonPathError extends Error {}

type Step =
  | { kind: 'field'; name: string }
  | { kind: 'wildcard' }
  | { kind: 'recursive' }
  | { kind: 'slice'; start?: number; end?: number; endDerived: boolean; step?: number }
  | { kind: 'union'; parts: Step[][] }
  | { kind: 'filter'; left: Step[]; op: string; right: Step[] }
  | { kind: 'text'; text: string }
  | { kind: 'literal'; value: number | boolean }
  | { kind: 'identifier'; name: string };

/**
 * Text and actions in order. `range` and `end` stay flat, as client-go runs
 * them: a range runs what follows it once per item up to its `end`.
 */
type Item = { kind: 'text'; text: string } | { kind: 'action'; steps: Step[]; range: boolean; end: boolean };

export interface Template {
  source: string;
  items: Item[];
}

const TERMINATORS = new Set([' ', '\t', '\r', '\n', '.', ',', '[', ']', '$', '@', '{', '}']);
const SLICE = /^(-?\d*)(:-?\d*)?(:-?\d*)?$/;
const DICT_KEY = /^'([^']*)'$/;
const FILTER = /^([^!<>=]+)([!<>=]+)(.+?)$/;

/** Parses a template; a syntax error is a JsonPathError saying where, as kubectl's. */
export function parseJsonPath(source: string): Template {
  try {
    return { source, items: items(source) };
  } catch (err) {
    if (err instanceof JsonPathError) throw new JsonPathError(`error parsing jsonpath ${source}, ${err.message}`);
    throw err;
  }
}

function items(source: string): Item[] {
  const out: Item[] = [];
  let pos = 0;
  while (pos < source.length) {
    const open = source.indexOf('{', pos);
    if (open < 0) {
      out.push({ kind: 'text', text: source.slice(pos) });
      break;
    }
    if (open > pos) out.push({ kind: 'text', text: source.slice(pos, open) });
    const p = new ActionParser(source, open + 1);
    const steps = p.parseSteps(true);
    pos = p.pos;
    const first = steps[0];
    const range = first?.kind === 'identifier' && first.name === 'range';
    const end = first?.kind === 'identifier' && first.name === 'end';
    out.push({ kind: 'action', steps: range || end ? steps.slice(1) : steps, range, end });
  }
  return out;
}

class ActionParser {
  constructor(
    private readonly src: string,
    public pos: number,
  ) {}

  private rest(): string {
    return this.src.slice(this.pos);
  }

  /** Steps up to the closing brace (when `braced`) or the end of the text. */
  parseSteps(braced: boolean): Step[] {
    const steps: Step[] = [];
    for (;;) {
      const rest = this.rest();
      if (braced && rest.startsWith('}')) {
        this.pos++;
        return steps;
      }
      if (rest === '' || rest[0] === '\n' || rest[0] === '\r') {
        if (braced) throw new JsonPathError('unclosed action');
        return steps;
      }
      if (rest.startsWith('[?(')) steps.push(this.filter());
      else if (rest.startsWith('..')) {
        if (steps.at(-1)?.kind === 'recursive') throw new JsonPathError('invalid multiple recursive descent');
        this.pos += 2;
        steps.push({ kind: 'recursive' });
        if (/^[\p{L}\p{N}_]/u.test(this.rest())) steps.push(this.field());
      } else {
        const c = rest[0]!;
        if (c === ' ' || c === '\t' || c === '@' || c === '$') this.pos++;
        else if (c === '[') steps.push(...this.bracket());
        else if (c === '"' || c === "'") steps.push(this.quote(c));
        else if (c === '.') {
          this.pos++;
          steps.push(this.field());
        } else if (c === '+' || c === '-' || /\d/.test(c)) steps.push(this.number());
        else if (/[\p{L}\p{N}_]/u.test(c)) steps.push(this.identifier());
        else throw new JsonPathError(`unrecognized character in action: ${JSON.stringify(c)}`);
      }
    }
  }

  /** A name up to an unescaped terminator; backslashes escape (`kubernetes\.io/name`). */
  private field(): Step {
    let name = '';
    while (this.pos < this.src.length) {
      const c = this.src[this.pos]!;
      if (c === '\\') {
        name += this.src[this.pos + 1] ?? '';
        this.pos += 2;
        continue;
      }
      if (TERMINATORS.has(c)) break;
      name += c;
      this.pos++;
    }
    return name === '*' ? { kind: 'wildcard' } : { kind: 'field', name };
  }

  private identifier(): Step {
    const start = this.pos;
    while (this.pos < this.src.length && !TERMINATORS.has(this.src[this.pos]!)) this.pos++;
    const name = this.src.slice(start, this.pos);
    return name === 'true' || name === 'false' ? { kind: 'literal', value: name === 'true' } : { kind: 'identifier', name };
  }

  private number(): Step {
    const m = /^[+-]?[\d.]*/.exec(this.rest())![0];
    this.pos += m.length;
    const value = Number(m);
    if (m === '' || m === '+' || m === '-' || Number.isNaN(value)) throw new JsonPathError(`cannot parse number ${m}`);
    return { kind: 'literal', value };
  }

  private quote(q: string): Step {
    let i = this.pos + 1;
    for (; ; i++) {
      if (i >= this.src.length || this.src[i] === '\n') throw new JsonPathError('unterminated quoted string');
      if (this.src[i] === q && this.src[i - 1] !== '\\') break;
    }
    const text = unquote(this.src.slice(this.pos + 1, i));
    this.pos = i + 1;
    return { kind: 'text', text };
  }

  private bracket(): Step[] {
    const close = this.src.indexOf(']', this.pos);
    const nl = this.src.indexOf('\n', this.pos);
    if (close < 0 || (nl >= 0 && nl < close)) throw new JsonPathError('unterminated array');
    let text = this.src.slice(this.pos + 1, close);
    this.pos = close + 1;
    if (text === '*') text = ':';
    const parts = text.split(',');
    if (parts.length > 1) return [{ kind: 'union', parts: parts.map((s) => subSteps(`[${s.trim()}]`)) }];
    const key = DICT_KEY.exec(text);
    if (key) return subSteps(`.${key[1]}`);
    const m = SLICE.exec(text);
    if (!m) throw new JsonPathError(`invalid array index ${text}`);
    const num = (s: string | undefined) => (s === undefined || s === '' || s === ':' ? undefined : Number(s.replace(/^:/, '')));
    const start = num(m[1]);
    const explicitEnd = num(m[2]);
    // `[n]` is `[n:n+1]`, its end derived.
    const endDerived = m[2] === undefined;
    const end = endDerived ? (start ?? 0) + 1 : explicitEnd;
    return [{ kind: 'slice', start, end, endDerived, step: num(m[3]) }];
  }

  private filter(): Step {
    this.pos += 3;
    const begin = this.pos;
    let open: string | undefined;
    let closed = false;
    for (; ; this.pos++) {
      if (this.pos >= this.src.length || this.src[this.pos] === '\n') throw new JsonPathError('unterminated filter');
      const c = this.src[this.pos]!;
      if (c === '"' || c === "'") {
        if (open === undefined) open = c;
        else if (c === open && this.src[this.pos - 1] !== '\\') closed = true;
      } else if (c === ')' && (open === undefined || closed)) break; // a ")" inside the quoted operand is not the end
    }
    const text = this.src.slice(begin, this.pos);
    this.pos++;
    if (this.src[this.pos] !== ']') throw new JsonPathError('unclosed array expect ]');
    this.pos++;
    const m = FILTER.exec(text);
    if (!m) return { kind: 'filter', left: subSteps(text), op: 'exists', right: [] };
    return { kind: 'filter', left: subSteps(m[1]!), op: m[2]!, right: subSteps(m[3]!) };
  }
}

function subSteps(text: string): Step[] {
  return new ActionParser(text, 0).parseSteps(false);
}

const ESCAPES: Record<string, string> = { n: '\n', t: '\t', r: '\r', a: '\x07', b: '\b', f: '\f', v: '\v', '\\': '\\', '"': '"', "'": "'" };

/** Go's escapes (strconv.UnquoteChar) in a quoted string. */
function unquote(s: string): string {
  return s.replace(/\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{3}|.)/g, (all, e: string) => {
    if (/^[xuU]/.test(e)) return String.fromCodePoint(parseInt(e.slice(1), 16));
    if (/^[0-7]{3}$/.test(e)) return String.fromCodePoint(parseInt(e, 8));
    const c = ESCAPES[e];
    if (c === undefined) throw new JsonPathError(`unquote string ${JSON.stringify(s)}: invalid escape ${all}`);
    return c;
  });
}

// ---------------------------------------------------------------- evaluation

type Value = unknown;

const isObject = (v: Value): v is Record<string, Value> => typeof v === 'object' && v !== null && !Array.isArray(v);

function evalSteps(input: Value[], steps: Step[]): Value[] {
  let cur = input;
  for (const s of steps) cur = evalStep(cur, s);
  return cur;
}

function evalStep(input: Value[], s: Step): Value[] {
  switch (s.kind) {
    case 'field':
      return input.filter(isObject).flatMap((v) => (Object.hasOwn(v, s.name) ? [v[s.name]] : []));
    case 'wildcard':
      return input.flatMap((v) => (Array.isArray(v) ? v : isObject(v) ? Object.values(v) : []));
    case 'recursive':
      return input.flatMap(descendants);
    case 'slice':
      return input.flatMap((v) => slice(v, s));
    case 'union':
      return s.parts.flatMap((p) => evalSteps(input, p));
    case 'filter':
      return input.flatMap((v) => filter(v, s));
    case 'text':
      return [s.text];
    case 'literal':
      return input.map(() => s.value);
    case 'identifier':
      throw new JsonPathError(`unrecognized identifier ${s.name}`);
  }
}

/** Every value with children, itself first, depth first: what `..` applies its next step to. */
function descendants(v: Value): Value[] {
  const children = Array.isArray(v) ? v : isObject(v) ? Object.values(v) : [];
  return children.length === 0 ? [] : [v, ...children.flatMap(descendants)];
}

function slice(v: Value, s: Step & { kind: 'slice' }): Value[] {
  if (v === null || v === undefined) return [];
  if (!Array.isArray(v)) throw new JsonPathError(`${goType(v)} is not array or slice`);
  const len = v.length;
  let start = s.start ?? 0;
  if (start < 0) start += len;
  let end = s.end ?? len;
  if (end < 0 || (end === 0 && s.endDerived)) end += len;
  if (end === start) return [];
  if (start >= len || start < 0) throw new JsonPathError(`array index out of bounds: index ${start}, length ${len}`);
  if (end > len || end < 0) throw new JsonPathError(`array index out of bounds: index ${end - 1}, length ${len}`);
  if (start > end) throw new JsonPathError(`starting index ${start} is greater than ending index ${end}`);
  const step = s.step ?? 1;
  if (step <= 0) throw new JsonPathError('step must be > 0');
  return v.slice(start, end).filter((_, i) => i % step === 0);
}

function filter(v: Value, s: Step & { kind: 'filter' }): Value[] {
  if (!Array.isArray(v)) throw new JsonPathError(`${goPrint(v)} is not array or slice and cannot be filtered`);
  return v.filter((item) => {
    if (s.op === 'exists') {
      try {
        return evalSteps([item], s.left).length > 0;
      } catch {
        return false;
      }
    }
    const lefts = evalSteps([item], s.left);
    if (lefts.length === 0) return false;
    if (lefts.length > 1) throw new JsonPathError('can only compare one element at a time');
    const rights = evalSteps([item], s.right);
    if (rights.length === 0) return false;
    if (rights.length > 1) throw new JsonPathError('can only compare one element at a time');
    return compare(lefts[0], s.op, rights[0]);
  });
}

/** As Go templates compare: numbers with numbers, strings with strings, booleans only for (in)equality. */
function compare(a: Value, op: string, b: Value): boolean {
  const kind = (v: Value) => (typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean' ? typeof v : undefined);
  if (kind(a) === undefined || kind(b) === undefined) throw new JsonPathError('invalid type for comparison');
  if (kind(a) !== kind(b)) throw new JsonPathError('incompatible types for comparison');
  const x = a as number | string | boolean;
  const y = b as number | string | boolean;
  if (op === '==') return x === y;
  if (op === '!=') return x !== y;
  if (typeof x === 'boolean') throw new JsonPathError('invalid type for comparison');
  switch (op) {
    case '<':
      return x < y;
    case '>':
      return x > y;
    case '<=':
      return x <= y;
    case '>=':
      return x >= y;
  }
  throw new JsonPathError(`unrecognized filter operator ${op}`);
}

/**
 * The results of each item, as client-go's FindResults walks them: a range
 * runs the items after it once per value (that value their `.`; once on
 * nothing when there is none, for the errors) up to an `{end}`, then goes on
 * after the last `{end}` reached. A range left open therefore ends with the
 * template, and its items then run once more on the data around it.
 */
function results(items: Item[], data: Value): Value[][] {
  const walk = { depth: 0, lastEnd: -1 };
  const find = (from: number, dot: Value): Value[][] => {
    const out: Value[][] = [];
    for (let i = from; i < items.length; i++) {
      const item = items[i]!;
      if (item.kind === 'text') {
        out.push([item.text]);
        continue;
      }
      if (item.end) {
        if (walk.depth === 0) throw new JsonPathError('not in range, nothing to end');
        walk.lastEnd = i;
        break;
      }
      const values = evalSteps([dot], item.steps);
      if (!item.range) {
        out.push(values);
        continue;
      }
      walk.depth++;
      if (values.length === 0) find(i + 1, null);
      for (const v of values) out.push(...find(i + 1, v));
      walk.depth--;
      if (walk.lastEnd > i) i = walk.lastEnd;
    }
    return out;
  };
  return find(0, data);
}

/**
 * What `-o jsonpath` prints for `data`: each node's values, space-separated;
 * with `asJson` (`-o jsonpath-as-json`), each node's values as an indented
 * JSON array, as client-go's JSON output prints them.
 */
export function executeJsonPath(t: Template, data: Value, asJson = false): string {
  return run(t, data)
    .map((vals) => (asJson ? `${goJson(vals, 4)}\n` : vals.map((v) => (typeof v === 'object' && v !== null ? goJson(v) : goPrint(v))).join(' ')))
    .join('');
}

/** The template's results on `data`; an error names the template, as kubectl's. */
function run(t: Template, data: Value): Value[][] {
  try {
    return results(t.items, data);
  } catch (err) {
    if (err instanceof JsonPathError) throw new JsonPathError(`error executing jsonpath ${JSON.stringify(t.source)}: ${err.message}`);
    throw err;
  }
}

/** Go's json.Marshal (MarshalIndent with `indent` spaces): map keys sorted, <, > and & escaped. */
function goJson(v: Value, indent?: number): string {
  const sorted = (x: Value): Value =>
    Array.isArray(x) ? x.map(sorted) : isObject(x) ? Object.fromEntries(Object.keys(x).sort().map((k) => [k, sorted(x[k])])) : x;
  return JSON.stringify(sorted(v), null, indent).replace(/[<>&]/g, (c) => `\\u00${c.charCodeAt(0).toString(16)}`);
}

/** Go's fmt %v of a decoded JSON value. */
function goPrint(v: Value): string {
  if (v === null || v === undefined) return '<nil>';
  if (Array.isArray(v)) return `[${v.map(goPrint).join(' ')}]`;
  if (isObject(v)) return `map[${Object.keys(v).sort().map((k) => `${k}:${goPrint(v[k])}`).join(' ')}]`;
  return String(v);
}

function goType(v: Value): string {
  if (isObject(v)) return 'map[string]interface {}';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int64' : 'float64';
  if (typeof v === 'boolean') return 'bool';
  return 'string';
}

// ------------------------------------------------------------ custom columns

export interface Column {
  header: string;
  template: Template;
}

/** `-o custom-columns=HEADER:PATH,…`. */
export function parseCustomColumns(spec: string): Column[] {
  return spec.split(',').map((part) => {
    const colon = part.indexOf(':');
    if (colon < 0) throw new JsonPathError(`unexpected custom-columns spec: ${part}, expected <header>:<json-path-expr>`);
    return column(part.slice(0, colon), part.slice(colon + 1));
  });
}

/**
 * `-o custom-columns-file=FILE`'s text, as kubectl reads it: a line of
 * headers, then a line of as many paths, each list split on white space.
 */
export function parseCustomColumnsFile(text: string): Column[] {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop(); // a last line's end, as a line scanner reads it
  const [headerLine, specLine] = lines;
  const usage = 'Expected format is one line of space separated headers, one line of space separated column specs.';
  if (headerLine === undefined) throw new JsonPathError(`invalid template, missing header line. ${usage}`);
  if (specLine === undefined) throw new JsonPathError(`invalid template, missing spec line. ${usage}`);
  const words = (line: string) => line.split(/[ \t\r]+/).filter(Boolean);
  const [headers, specs] = [words(headerLine), words(specLine)];
  if (headers.length !== specs.length) throw new JsonPathError(`number of headers (${headers.length}) and field specifications (${specs.length}) don't match`);
  return headers.map((h, i) => column(h, specs[i]!));
}

/** A column whose path is in kubectl's relaxed form (`.a.b`, `a.b`, `{.a.b}`). */
function column(header: string, path: string): Column {
  const m = /^\{\.?([^{}]+)\}$|^\.?([^{}]+)$/.exec(path);
  if (!m) throw new JsonPathError(`unexpected path string, expected a 'name1.name2' or '.name1.name2' or '{name1.name2}' or '{.name1.name2}'`);
  return { header, template: parseJsonPath(`{.${m[1] ?? m[2]}}`) };
}

/** One row: each column's values joined by commas, `<none>` without any. */
export function customColumnsRow(columns: Column[], data: Value): string[] {
  return columns.map((c) => {
    const vals = run(c.template, data).flat();
    return vals.length === 0 ? '<none>' : vals.map(goPrint).join(',');
  });
}
