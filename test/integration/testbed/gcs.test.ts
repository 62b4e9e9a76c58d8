// fake-gcs-server smoke test: put and get an object through the GCS JSON API.
import { describe, expect, it } from 'vitest';
import { testbed, uniqueName } from '../../env/fixtures.ts';

describe('fake-gcs-server (GCS)', () => {
  it('puts and gets an object', async () => {
    const { endpoint } = testbed().gcs;
    const bucket = uniqueName('b');
    const created = await fetch(`${endpoint}/storage/v1/b?project=testbed`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: bucket }),
    });
    expect(created.status).toBe(200);
    const name = encodeURIComponent('docs/hello.txt');
    const put = await fetch(`${endpoint}/upload/storage/v1/b/${bucket}/o?uploadType=media&name=${name}`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: 'hello gcs',
    });
    expect(put.status).toBe(200);
    const got = await fetch(`${endpoint}/storage/v1/b/${bucket}/o/${name}?alt=media`);
    expect(await got.text()).toBe('hello gcs');
    const del = await fetch(`${endpoint}/storage/v1/b/${bucket}/o/${name}`, { method: 'DELETE' });
    expect(del.ok).toBe(true);
    const gone = await fetch(`${endpoint}/storage/v1/b/${bucket}/o/${name}`);
    expect(gone.status).toBe(404);
  });
});
