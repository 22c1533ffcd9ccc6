// kubectl's label selectors for `get -l` and `delete -l`.
import { expect, it } from 'vitest';
import { parseSelector } from '../../src/cli/selector.js';

const pods: Array<Record<string, string>> = [{ app: 'web', tier: 'front' }, { app: 'db', tier: 'back' }, { app: 'web' }, {}];
const pick = (selector: string) => pods.map((l, i) => (parseSelector(selector)(l) ? i : -1)).filter((i) => i >= 0);

it('selects as Kubernetes does: equality, inequality (missing labels match), sets, presence and absence, all of them', () => {
  expect(pick('app=web')).toEqual([0, 2]);
  expect(pick('app==web')).toEqual([0, 2]);
  expect(pick('app!=web')).toEqual([1, 3]);
  expect(pick('app in (web, db)')).toEqual([0, 1, 2]);
  expect(pick('tier notin (front)')).toEqual([1, 2, 3]);
  expect(pick('tier')).toEqual([0, 1]);
  expect(pick('!tier')).toEqual([2, 3]);
  expect(pick('app=web,tier')).toEqual([0]);
  expect(pick('app in (web,db),!tier')).toEqual([2]);
  expect(pick('example.com/team=x')).toEqual([]);
  expect(pick('')).toEqual([0, 1, 2, 3]);
});

it('refuses what is not a selector, naming the requirement; an empty value is one (the label present and empty)', () => {
  for (const bad of ['app=web,,', '=web', 'app in web', 'app=w b', 'app in (w b)', 'a$b']) {
    expect(() => parseSelector(bad), bad).toThrow(/^unable to parse requirement: /);
  }
  expect(parseSelector('app=')({ app: '' })).toBe(true);
  expect(parseSelector('app=')({})).toBe(false);
});
