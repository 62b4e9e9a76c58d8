import { describe, expect, it } from 'vitest';
import { BoundedLabel, createMetrics, durationBuckets, metricNames, otherLabel } from './metrics.ts';

/** The value of one sample line `name{labels} value` in the exposition text, or undefined. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m?.[1] !== name) continue;
    const have = (m[2] ?? '').split(',').filter((s) => s !== '');
    if (wanted.length === have.length && wanted.every((w) => have.includes(w))) return Number(m[3]);
  }
  return undefined;
}

describe('createMetrics', () => {
  it('registers every product metric with its type, and the process metrics', async () => {
    const metrics = createMetrics();
    const json = await metrics.registry.getMetricsAsJSON();
    const types = Object.fromEntries(json.map((m) => [m.name, String(m.type)]));
    expect(types).toMatchObject({
      [metricNames.requests]: 'counter',
      [metricNames.duration]: 'histogram',
      [metricNames.queueDepth]: 'gauge',
      [metricNames.size]: 'gauge',
      [metricNames.bytesCopied]: 'counter',
      [metricNames.objectsCopied]: 'counter',
      [metricNames.retries]: 'counter',
      [metricNames.errors]: 'counter',
      [metricNames.lastSuccess]: 'gauge',
      [metricNames.archivalPending]: 'gauge',
      [metricNames.archivalLag]: 'gauge',
      [metricNames.leader]: 'gauge',
      process_cpu_user_seconds_total: 'counter',
      nodejs_eventloop_lag_seconds: 'gauge',
    });
  });

  it('follows the Prometheus naming conventions', async () => {
    const json = await createMetrics({ defaultMetrics: false }).registry.getMetricsAsJSON();
    expect(json.map((m) => m.name).sort()).toEqual(Object.values(metricNames).sort());
    for (const m of json) {
      expect(m.name).toMatch(/^lc2_backup_[a-z_]+$/);
      expect(m.help.length).toBeGreaterThan(10);
      if (String(m.type) === 'counter') expect(m.name).toMatch(/_total$/);
      else expect(m.name).not.toMatch(/_total$/);
    }
  });

  it('counts finished requests, failures by reason, and the last successful backup per project', async () => {
    const metrics = createMetrics({ projects: ['retail'] });
    const at = new Date('2025-11-09T14:45:00Z');
    metrics.requestFinished({ kind: 'backup', state: 'Succeeded', project: 'retail', at });
    metrics.requestFinished({ kind: 'backup', state: 'Succeeded', project: 'retail', at });
    metrics.requestFinished({ kind: 'backup', state: 'Failed', project: 'retail', reason: 'BackupFailed' });
    metrics.requestFinished({ kind: 'restore', state: 'Succeeded', project: 'hr' });
    metrics.requestFinished({ kind: 'restore', state: 'Failed', project: 'hr' });
    const { body, contentType } = await metrics.scrape();
    expect(contentType).toMatch(/^text\/plain/);
    const requests = metricNames.requests;
    expect(sample(body, requests, { kind: 'backup', state: 'Succeeded', project: 'retail' })).toBe(2);
    expect(sample(body, requests, { kind: 'backup', state: 'Failed', project: 'retail' })).toBe(1);
    expect(sample(body, requests, { kind: 'restore', state: 'Failed', project: 'hr' })).toBe(1);
    expect(sample(body, metricNames.errors, { reason: 'BackupFailed' })).toBe(1);
    expect(sample(body, metricNames.errors, { reason: 'Unknown' })).toBe(1);
    expect(sample(body, metricNames.lastSuccess, { project: 'retail' })).toBe(at.getTime() / 1000);
    // a restore is not a backup: no last-success series for hr
    expect(sample(body, metricNames.lastSuccess, { project: 'hr' })).toBeUndefined();
  });

  it("starts configured projects' request counters at 0 and takes a last success from the catalog", async () => {
    const metrics = createMetrics({ defaultMetrics: false, projects: ['retail'] });
    metrics.setLastSuccess('retail', new Date('2025-11-09T14:45:00Z'));
    const { body } = await metrics.scrape();
    for (const kind of ['backup', 'restore']) {
      for (const state of ['Succeeded', 'Failed']) {
        expect(sample(body, metricNames.requests, { kind, state, project: 'retail' })).toBe(0);
      }
    }
    expect(sample(body, metricNames.lastSuccess, { project: 'retail' })).toBe(1762699500);
  });

  it('observes durations into buckets that reach a day', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    metrics.observeDuration('database', 42);
    metrics.observeDuration('total', 3 * 3600);
    const { body } = await metrics.scrape();
    const bucket = `${metricNames.duration}_bucket`;
    expect(sample(body, bucket, { component: 'database', le: '30' })).toBe(0);
    expect(sample(body, bucket, { component: 'database', le: '60' })).toBe(1);
    expect(sample(body, bucket, { component: 'total', le: '7200' })).toBe(0);
    expect(sample(body, bucket, { component: 'total', le: '14400' })).toBe(1);
    expect(sample(body, `${metricNames.duration}_sum`, { component: 'total' })).toBe(10800);
    expect(durationBuckets.at(-1)).toBe(86400);
  });

  it('records queue depth, sizes, copied data, retries, archival lag and leadership', async () => {
    const metrics = createMetrics({ defaultMetrics: false, projects: ['retail'] });
    metrics.setQueueDepth('retail', 3);
    metrics.setBackupSize('retail', 'documentLibrary', 1234);
    metrics.addCopied('retail', { bytes: 100, objects: 2 });
    metrics.addCopied('retail', { bytes: 50 });
    metrics.retried('Throttled');
    metrics.setLeader(true);
    const now = new Date('2025-11-09T15:00:00Z');
    metrics.setCatalogArchival({ pending: 4, oldestFinishedAt: new Date(now.getTime() - 90_000), now });
    let { body } = await metrics.scrape();
    expect(sample(body, metricNames.queueDepth, { project: 'retail' })).toBe(3);
    expect(sample(body, metricNames.size, { project: 'retail', component: 'documentLibrary' })).toBe(1234);
    expect(sample(body, metricNames.bytesCopied, { project: 'retail' })).toBe(150);
    expect(sample(body, metricNames.objectsCopied, { project: 'retail' })).toBe(2);
    expect(sample(body, metricNames.retries, { reason: 'Throttled' })).toBe(1);
    expect(sample(body, metricNames.leader)).toBe(1);
    expect(sample(body, metricNames.archivalPending)).toBe(4);
    expect(sample(body, metricNames.archivalLag)).toBe(90);
    metrics.setCatalogArchival({ pending: 0 });
    metrics.setLeader(false);
    ({ body } = await metrics.scrape());
    expect(sample(body, metricNames.archivalLag)).toBe(0);
    expect(sample(body, metricNames.leader)).toBe(0);
  });

  it('bounds the project and reason label values', async () => {
    const metrics = createMetrics({ defaultMetrics: false, projects: ['retail', 'hr'], maxProjects: 3 });
    for (const project of ['new-1', 'new-2', 'new-3', 'retail', 'hr']) metrics.setQueueDepth(project, 1);
    metrics.setQueueDepth('Not A Project Id!', 1);
    for (let i = 0; i < 60; i++) metrics.retried(`Reason${i}`);
    const { body } = await metrics.scrape();
    const projects = [...body.matchAll(/lc2_backup_semaphore_queue_depth\{project="([^"]+)"\}/g)].map(
      (m) => m[1],
    );
    expect(projects.sort()).toEqual(['hr', 'new-1', otherLabel, 'retail']);
    const reasons = new Set(
      [...body.matchAll(/lc2_backup_retries_total\{reason="([^"]+)"\}/g)].map((m) => m[1]),
    );
    expect(reasons.size).toBe(51);
    expect(sample(body, metricNames.retries, { reason: otherLabel })).toBe(10);
  });

  it('refuses values outside the closed sets and negative amounts', () => {
    const metrics = createMetrics({ defaultMetrics: false });
    expect(() => {
      metrics.observeDuration('search' as never, 1);
    }).toThrow(/component must be one of database, documentLibrary, manifest, total/);
    expect(() => {
      metrics.requestFinished({ kind: 'backup', state: 'InProgress' as never, project: 'p' });
    }).toThrow(/state must be one of Succeeded, Failed/);
    expect(() => {
      metrics.addCopied('p', { bytes: -1 });
    }).toThrow(/bytes must be a finite number/);
    expect(() => {
      metrics.observeDuration('total', Number.NaN);
    }).toThrow(/seconds must be a finite number/);
  });

  it('keeps registries apart', async () => {
    const a = createMetrics({ defaultMetrics: false });
    const b = createMetrics({ defaultMetrics: false });
    a.retried('Timeout');
    expect(sample((await b.scrape()).body, metricNames.retries, { reason: 'Timeout' })).toBeUndefined();
  });
});

describe('BoundedLabel', () => {
  it('always admits the configured values, then new ones up to the cap', () => {
    const label = new BoundedLabel(2, ['a']);
    expect(label.value('a')).toBe('a');
    expect(label.value('b')).toBe('b');
    expect(label.value('c')).toBe(otherLabel);
    expect(label.value('b')).toBe('b');
    expect(label.value('')).toBe(otherLabel);
  });
});
