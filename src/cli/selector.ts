// kubectl's label selectors (-l): requirements joined by commas, all of which
// must hold. Equality-based `k=v`, `k==v`, `k!=v`; set-based `k in (a,b)`,
// `k notin (a,b)`, `k` (present) and `!k` (absent). As in Kubernetes, `!=`
// and `notin` also match a pod without the label.

import { UsageError } from './usage.js';

export type Selector = (labels: Record<string, string>) => boolean;

const KEY = '[A-Za-z0-9]([A-Za-z0-9._/-]*[A-Za-z0-9])?';
const VALUE = '([A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?)?';
const EQUALITY = new RegExp(`^(${KEY})\\s*(==|=|!=)\\s*(${VALUE})$`);
const SET = new RegExp(`^(${KEY})\\s+(in|notin)\\s+\\(([^()]*)\\)$`);
const EXISTS = new RegExp(`^(!?)\\s*(${KEY})$`);

/** The requirements of a selector, split at commas outside parentheses. */
function requirements(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of text) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      out.push(cur.trim());
      cur = '';
    } else cur += ch;
  }
  out.push(cur.trim());
  return out;
}

function requirement(text: string): Selector {
  const bad = () => new UsageError(`unable to parse requirement: ${JSON.stringify(text)} (a label selector is k=v, k!=v, "k in (a,b)", "k notin (a,b)", k or !k)`);
  let m = EQUALITY.exec(text);
  if (m) {
    const [key, op, value] = [m[1]!, m[3]!, m[4]!];
    return op === '!=' ? (l) => l[key] !== value : (l) => l[key] === value;
  }
  m = SET.exec(text);
  if (m) {
    const [key, op] = [m[1]!, m[3]!];
    const values = m[4]!.split(',').map((v) => v.trim());
    if (values.some((v) => !new RegExp(`^${VALUE}$`).test(v))) throw bad();
    return op === 'in' ? (l) => l[key] !== undefined && values.includes(l[key]) : (l) => l[key] === undefined || !values.includes(l[key]);
  }
  m = EXISTS.exec(text);
  if (m) {
    const [absent, key] = [m[1] === '!', m[2]!];
    return (l) => (l[key] !== undefined) !== absent;
  }
  throw bad();
}

export function parseSelector(text: string): Selector {
  if (text.trim() === '') return () => true;
  const all = requirements(text).map(requirement);
  return (labels) => all.every((r) => r(labels));
}
