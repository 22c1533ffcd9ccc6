import { describe, expect, it } from 'vitest';
import { customColumnsRow, executeJsonPath, parseCustomColumns, parseCustomColumnsFile, parseJsonPath } from '../../src/cli/jsonpath.js';

const pods = {
  apiVersion: 'v1',
  kind: 'List',
  items: [
    {
      kind: 'Pod',
      metadata: { name: 'web', labels: { app: 'web', 'app.kubernetes.io/name': 'frontend' } },
      status: { phase: 'Running', podIP: '10.0.0.5', containerStatuses: [{ name: 'nginx', ready: true, restartCount: 2 }] },
    },
    {
      kind: 'Pod',
      metadata: { name: 'db', labels: { app: 'db' } },
      status: {
        phase: 'Pending',
        containerStatuses: [
          { name: 'pg', ready: false, restartCount: 0 },
          { name: 'side', ready: true, restartCount: 1 },
        ],
      },
    },
  ],
};

const run = (template: string, data: unknown = pods) => executeJsonPath(parseJsonPath(template), data);

describe('kubectl JSONPath templates (-o jsonpath)', () => {
  it.each([
    ['{.kind}', 'List'],
    ["{['kind']}", 'List'],
    ['{$.kind}', 'List'],
    ['{.items[*].metadata.name}', 'web db'],
    ['{.items[0].metadata.name}', 'web'],
    ['{.items[-1].metadata.name}', 'db'],
    ['{.items[-1:].metadata.name}', 'db'],
    ['{.items[0:2:2].metadata.name}', 'web'],
    ['{.items[1:1]}', ''],
    ['{.items[0,1].status.phase}', 'Running Pending'],
    // Recursive descent: every object below, depth first.
    ['{..name}', 'web nginx db pg side'],
    ['{range .items[*]}{.metadata.name}{"\\t"}{.status.phase}{"\\n"}{end}', 'web\tRunning\ndb\tPending\n'],
    ['{range .items[*]}[{.metadata.name}, {range .status.containerStatuses[*]}{.name}:{.restartCount} {end}] {end}', '[web, nginx:2 ] [db, pg:0 side:1 ] '],
    // A range left open runs to the end of the template, then its items run once more on the data around it (client-go).
    ['{range .items[*]}{.metadata.name}{"\\n"}', 'web\ndb\n\n'],
    ['{range .items[*]}{.kind}', 'PodPodList'],
    ['{.kind} {range .items[*]}{.metadata.name},{end}{range .items[*]}<{.metadata.name}>', 'List web,db,<web><db><>'],
    // …resuming after the last {end} reached: here the inner range's.
    ['{range .items[*]}{range .status.containerStatuses[*]}{.name} {end}{.metadata.name};', 'nginx web;pg side db;;'],
    ['{range .items[5:5]}{.x}{end}done', 'done'],
    ['{.items[?(@.status.phase=="Pending")].metadata.name}', 'db'],
    ["{.items[?(@.status.phase!='Pending')].metadata.name}", 'web'],
    // A filter on a path alone keeps the items that have it.
    ['{.items[?(@.status.podIP)].metadata.name}', 'web'],
    ['{.items[*].status.containerStatuses[?(@.restartCount>0)].name}', 'nginx side'],
    ['{.items[*].status.containerStatuses[?(@.ready==true)].name}', 'nginx side'],
    ['{.items[0].metadata.labels.app\\.kubernetes\\.io/name}', 'frontend'],
    // A quoted key is a path: its dots separate fields, as in client-go.
    ["{.items[*]['metadata.name', 'status.phase']}", 'web db Running Pending'],
    ['{.items[0].metadata.labels}', '{"app":"web","app.kubernetes.io/name":"frontend"}'],
    ['{.items[0].status.containerStatuses[0].ready} {.items[0].status.containerStatuses[0].restartCount}', 'true 2'],
    ['{.items[0].metadata.*}', 'web {"app":"web","app.kubernetes.io/name":"frontend"}'],
    ['{.missing}{.items[*].missing}', ''],
    ['pods: {.items[*].metadata.name}.', 'pods: web db.'],
    ['no braces at all', 'no braces at all'],
    ['{ .kind }', 'List'],
  ])('%s', (template, want) => {
    expect(run(template)).toBe(want);
  });

  it('-o jsonpath-as-json: each node\'s values as an array, indented by four as Go\'s MarshalIndent, one per node', () => {
    const asJson = (template: string) => executeJsonPath(parseJsonPath(template), pods, true);
    expect(asJson('{.items[*].metadata.name}')).toBe('[\n    "web",\n    "db"\n]\n');
    expect(asJson('{.items[0].metadata.labels}')).toBe('[\n    {\n        "app": "web",\n        "app.kubernetes.io/name": "frontend"\n    }\n]\n');
    // Text is a node too; a missing key an empty array.
    expect(asJson('{.kind} x{.nothing}')).toBe('[\n    "List"\n]\n[\n    " x"\n]\n[]\n');
  });

  it('prints objects as Go marshals them: keys sorted, <, > and & escaped', () => {
    expect(run('{.x}', { x: { b: [1, 'a<b>&'], a: null } })).toBe('{"a":null,"b":[1,"a\\u003cb\\u003e\\u0026"]}');
    expect(run('{.x}', { x: 1.5 })).toBe('1.5');
    expect(run('{.x}', { x: null })).toBe('<nil>');
  });

  it.each([
    ['{.items[5]}', 'error executing jsonpath "{.items[5]}": array index out of bounds: index 5, length 2'],
    ['{.items[1:0]}', 'starting index 1 is greater than ending index 0'],
    ['{.items[::0]}', 'step must be > 0'],
    ['{.kind[0]}', 'string is not array or slice'],
    ['{.kind[?(@.a)]}', 'List is not array or slice and cannot be filtered'],
    ['{.items[?(@.status.phase==1)]}', 'incompatible types for comparison'],
    ['{.items[*].status.containerStatuses[?(@.ready>false)]}', 'invalid type for comparison'],
    ['{.items[?(@.status.containerStatuses[*].name=="pg")]}', 'can only compare one element at a time'],
    ['{.kind foo}', 'unrecognized identifier foo'],
    ['{end}', 'not in range, nothing to end'],
    ['{range .items[*]}{end}{end}', 'not in range, nothing to end'],
  ])('%s fails when run', (template, message) => {
    expect(() => run(template)).toThrow(message);
  });

  it.each([
    ['{.kind', 'error parsing jsonpath {.kind, unclosed action'],
    ['{.items[0}', 'unterminated array'],
    ['{.items[x]}', 'invalid array index x'],
    ['{.items[?(@.a=="b"]}', 'unterminated filter'],
    ['{"abc}', 'unterminated quoted string'],
    ['{....a}', 'invalid multiple recursive descent'],
    ['{#}', 'unrecognized character in action: "#"'],
  ])('%s is refused when parsed', (template, message) => {
    expect(() => parseJsonPath(template)).toThrow(message);
  });
});

describe('kubectl custom columns (-o custom-columns)', () => {
  it('takes relaxed paths, joins several values with commas, and prints <none> for none, maps as Go does', () => {
    const cols = parseCustomColumns('NAME:.metadata.name,IP:status.podIP,CONTAINERS:{.status.containerStatuses[*].name},LABELS:{metadata.labels}');
    expect(cols.map((c) => c.header)).toEqual(['NAME', 'IP', 'CONTAINERS', 'LABELS']);
    expect(pods.items.map((p) => customColumnsRow(cols, p))).toEqual([
      ['web', '10.0.0.5', 'nginx', 'map[app:web app.kubernetes.io/name:frontend]'],
      ['db', '<none>', 'pg,side', 'map[app:db]'],
    ]);
  });

  it('-o custom-columns-file: a line of headers and a line of as many paths, split on white space (kubectl)', () => {
    const cols = parseCustomColumnsFile('NAME   IP\tCONTAINERS\r\n.metadata.name  status.podIP {.status.containerStatuses[*].name}\n');
    expect(pods.items.map((p) => customColumnsRow(cols, p))).toEqual([
      ['web', '10.0.0.5', 'nginx'],
      ['db', '<none>', 'pg,side'],
    ]);
    expect(cols.map((c) => c.header)).toEqual(['NAME', 'IP', 'CONTAINERS']);
    expect(() => parseCustomColumnsFile('')).toThrow(/^invalid template, missing header line\. Expected format is one line of space separated headers/);
    expect(() => parseCustomColumnsFile('NAME IP\n')).toThrow(/^invalid template, missing spec line\./);
    expect(() => parseCustomColumnsFile('NAME IP\n.metadata.name\n')).toThrow("number of headers (2) and field specifications (1) don't match");
  });

  it('refuses a column without a path, and a path with braces inside', () => {
    expect(() => parseCustomColumns('NAME')).toThrow('unexpected custom-columns spec: NAME, expected <header>:<json-path-expr>');
    expect(() => parseCustomColumns('A:{.a}{.b}')).toThrow(/unexpected path string/);
    expect(() => customColumnsRow(parseCustomColumns('A:.items[9]'), pods)).toThrow('array index out of bounds: index 9, length 2');
  });
});
