import { describe, expect, it } from 'vitest';
import { BackupRequest } from '../../api/v1alpha1/backupRequest.ts';
import { ValidationError } from '../errors/index.ts';
import { ParsedSpecs } from './parsedSpecs.ts';
import type { Resource } from './resources.ts';

function request(
  more: { uid?: string; generation?: number; labels?: Record<string, string> },
  spec: object,
): Resource {
  return {
    apiVersion: 'backup.liferay.cloud/v1alpha1',
    kind: 'BackupRequest',
    metadata: {
      namespace: 'retail-prd',
      name: 'nightly',
      creationTimestamp: '2026-12-07T10:00:00Z',
      ...(more.uid === undefined ? {} : { uid: more.uid }),
      ...(more.generation === undefined ? {} : { generation: more.generation }),
      ...(more.labels === undefined ? {} : { labels: more.labels }),
    },
    spec,
    status: { state: 'Pending' },
  };
}

const spec = {
  projectId: 'retail',
  environment: 'prd',
  database: { instanceId: 'retail-prd-db' },
  documentLibrary: { sourceBucket: 'retail-prd-dl', destinationBucket: 'retail-backups' },
};

describe('ParsedSpecs', () => {
  it('parses a spec with its defaults, and serves it again with the current metadata while the generation is the same', () => {
    const specs = new ParsedSpecs(BackupRequest, 'BackupRequest');
    const first = specs.parse('retail-prd/nightly', request({ uid: 'u1', generation: 1 }, spec));
    expect(first.spec.deletionPolicy).toBe('Retain');
    expect(first.spec.database.type).toBe('snapshot');
    // a status write or a new label does not change the generation; the spec is not parsed again
    // (the object given here has a spec the schema would refuse, which the kept parse never reads)
    const again = specs.parse(
      'retail-prd/nightly',
      request({ uid: 'u1', generation: 1, labels: { team: 'a' } }, { ...spec, unknownField: 1 }),
    );
    expect(again.spec).toBe(first.spec);
    expect(again.metadata.labels).toEqual({ team: 'a' });
    expect(specs.size).toBe(1);
  });

  it('parses again when the generation or the uid changes, and refuses a spec made invalid', () => {
    const specs = new ParsedSpecs(BackupRequest, 'BackupRequest');
    specs.parse('retail-prd/nightly', request({ uid: 'u1', generation: 1 }, spec));
    const bad = { ...spec, deletionPolicy: 'Shred' };
    expect(() => specs.parse('retail-prd/nightly', request({ uid: 'u1', generation: 2 }, bad))).toThrow(
      /BackupRequest retail-prd\/nightly is invalid:\n {2}spec\.deletionPolicy: must be one of "Retain", "Delete"/,
    );
    expect(specs.size).toBe(0);
    // the same name created again (a new uid) at generation 1
    const recreated = specs.parse(
      'retail-prd/nightly',
      request({ uid: 'u2', generation: 1 }, { ...spec, deletionPolicy: 'Delete' }),
    );
    expect(recreated.spec.deletionPolicy).toBe('Delete');
  });

  it('keeps nothing for an object without a uid or generation, and forgets a finished request', () => {
    const specs = new ParsedSpecs(BackupRequest, 'BackupRequest');
    specs.parse('retail-prd/nightly', request({}, spec));
    expect(specs.size).toBe(0);
    expect(() => specs.parse('retail-prd/nightly', request({}, { ...spec, unknownField: 1 }))).toThrow(
      ValidationError,
    );
    specs.parse('retail-prd/nightly', request({ uid: 'u1', generation: 1 }, spec));
    specs.forget('retail-prd/nightly');
    expect(specs.size).toBe(0);
  });
});
