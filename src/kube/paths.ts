// API paths of the kinds lc2-backup reads and writes (the one place they are spelled).
import { group, version } from '../../api/v1alpha1/common.ts';

function path(
  base: string,
  plural: string,
  where: { namespace?: string; name?: string; sub?: string },
): string {
  const { namespace, name, sub } = where;
  const ns = namespace === undefined ? '' : `/namespaces/${encodeURIComponent(namespace)}`;
  const one = name === undefined ? '' : `/${encodeURIComponent(name)}`;
  return `${base}${ns}/${plural}${one}${sub === undefined ? '' : `/${sub}`}`;
}

/** lc2-backup's own kinds (backuprequests, restorerequests, backupschedules). */
export const customPath = (plural: string, namespace?: string, name?: string, sub?: 'status'): string =>
  path(`/apis/${group}/${version}`, plural, { namespace, name, sub });

export const leasePath = (namespace: string, name?: string): string =>
  path('/apis/coordination.k8s.io/v1', 'leases', { namespace, name });

export const jobPath = (namespace: string, name?: string): string =>
  path('/apis/batch/v1', 'jobs', { namespace, name });

export const cronJobPath = (namespace: string, name?: string): string =>
  path('/apis/batch/v1', 'cronjobs', { namespace, name });

export const podPath = (namespace: string, name?: string, sub?: 'log'): string =>
  path('/api/v1', 'pods', { namespace, name, sub });

export const eventPath = (namespace: string): string => path('/api/v1', 'events', { namespace });
