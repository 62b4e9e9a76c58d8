import { describe, expect, it } from 'vitest';
import type { Resource } from './resources.ts';
import { WaitingLine } from './waitingLine.ts';

function request(
  name: string,
  project: string,
  created: string,
  more: { state?: string; deleting?: boolean } = {},
): Resource {
  const { state, deleting = false } = more;
  return {
    apiVersion: 'backup.liferay.cloud/v1alpha1',
    kind: 'BackupRequest',
    metadata: {
      namespace: `ns-${project}`,
      name,
      creationTimestamp: created,
      ...(deleting ? { deletionTimestamp: '2026-11-27T10:00:00Z' } : {}),
    },
    spec: { projectId: project },
    ...(state === undefined ? {} : { status: { state } }),
  };
}

describe('WaitingLine', () => {
  it("keeps each project's waiting requests oldest first (then by name)", () => {
    const line = new WaitingLine();
    line.seen(request('c', 'p1', '2026-11-27T10:00:02Z'));
    line.seen(request('b', 'p1', '2026-11-27T10:00:01Z'));
    line.seen(request('a', 'p1', '2026-11-27T10:00:02Z', { state: 'Pending' }));
    line.seen(request('x', 'p2', '2026-11-27T10:00:00Z'));
    expect(line.keys('p1')).toEqual(['ns-p1/b', 'ns-p1/a', 'ns-p1/c']);
    expect(line.keys('p2')).toEqual(['ns-p2/x']);
    expect(line.keys('p3')).toEqual([]);
    expect(line.keys()).toEqual(['ns-p2/x', 'ns-p1/b', 'ns-p1/a', 'ns-p1/c']);
  });

  it('drops a request that starts, finishes, is being deleted or is gone', () => {
    const line = new WaitingLine();
    for (const name of ['a', 'b', 'c', 'd', 'e'])
      line.seen(request(name, 'p1', `2026-11-27T10:00:0${name.charCodeAt(0) - 97}Z`));
    line.seen(request('a', 'p1', '2026-11-27T10:00:00Z', { state: 'InProgress' }));
    line.seen(request('b', 'p1', '2026-11-27T10:00:01Z', { state: 'Succeeded' }));
    line.seen(request('c', 'p1', '2026-11-27T10:00:02Z', { state: 'Failed' }));
    line.seen(request('d', 'p1', '2026-11-27T10:00:03Z', { deleting: true }));
    expect(line.keys('p1')).toEqual(['ns-p1/e']);
    line.gone(request('e', 'p1', '2026-11-27T10:00:04Z'));
    expect(line.keys()).toEqual([]);
    line.gone(request('e', 'p1', '2026-11-27T10:00:04Z'));
  });

  it('refiles a request whose project changed', () => {
    const line = new WaitingLine();
    line.seen(request('a', 'p1', '2026-11-27T10:00:00Z'));
    line.seen({ ...request('a', 'p1', '2026-11-27T10:00:00Z'), spec: { projectId: 'p2' } });
    expect(line.keys('p1')).toEqual([]);
    expect(line.keys('p2')).toEqual(['ns-p1/a']);
  });

  it('finds the n oldest of all projects, as a full sort would', () => {
    const line = new WaitingLine();
    const times = [7, 3, 9, 1, 8, 2, 6, 0, 5, 4];
    times.forEach((s, i) => {
      line.seen(request(`r${i}`, `p${i % 3}`, `2026-11-27T10:00:0${s}Z`));
    });
    expect(line.oldest(4)).toEqual(line.keys().slice(0, 4));
    expect(line.oldest(4)).toEqual(['ns-p1/r7', 'ns-p0/r3', 'ns-p2/r5', 'ns-p1/r1']);
    expect(line.oldest(20)).toEqual(line.keys());
    expect(line.oldest(0)).toEqual([]);
  });

  it("gives a request's place in the whole line, as the full list would", () => {
    const line = new WaitingLine();
    const times = [7, 3, 9, 1, 8, 2, 6, 0, 5, 4];
    times.forEach((s, i) => {
      line.seen(request(`r${i}`, `p${i % 3}`, `2026-11-27T10:00:0${s}Z`));
    });
    const all = line.keys();
    for (const [i, key] of all.entries()) expect(line.place(key)).toBe(i + 1);
    expect(line.place('ns-p0/nobody')).toBe(0);
    // a newer copy of a waiting request keeps its place; one that starts leaves the line
    line.seen({ ...request('r3', 'p0', '2026-11-27T10:00:01Z', { state: 'Pending' }) });
    expect(line.keys()).toEqual(all);
    line.seen(request('r7', 'p1', '2026-11-27T10:00:00Z', { state: 'InProgress' }));
    expect(line.place('ns-p0/r3')).toBe(1);
    expect(line.keys()).toEqual(all.slice(1));
  });

  it('orders requests of the same time and name by namespace, and finds each again', () => {
    const line = new WaitingLine();
    for (const ns of ['c', 'a', 'b']) {
      line.seen({
        ...request('same', 'p1', '2026-11-27T10:00:00Z'),
        metadata: { namespace: ns, name: 'same', creationTimestamp: '2026-11-27T10:00:00Z' },
      });
    }
    expect(line.keys('p1')).toEqual(['a/same', 'b/same', 'c/same']);
    line.gone({ ...request('same', 'p1', ''), metadata: { namespace: 'b', name: 'same' } });
    expect(line.keys('p1')).toEqual(['a/same', 'c/same']);
  });
});
