// Tenancy: a request may only name its own project's database instances and buckets. Checked
// before any byte is read, so a mistaken or hostile request never touches another tenant.
import type { Provider } from '../../api/v1alpha1/common.ts';
import { PolicyError, ValidationError } from '../errors/index.ts';
import type { Config, DatabaseConfig, ProjectConfig, StoreConfig } from './config.ts';

export interface ResolvedBucket {
  bucket: string;
  storeName: string;
  store: StoreConfig;
}

export function projectOf(config: Config, projectId: string, field = 'spec.projectId'): ProjectConfig {
  const project = config.projects[projectId];
  if (!project) {
    const known = Object.keys(config.projects);
    throw new PolicyError(
      `${field}: project "${projectId}" is not configured (configured: ${known.join(', ') || 'none'}); add it under projects: in the configuration`,
    );
  }
  return project;
}

/** The provider a request runs on: its own, else the project's, else aws (the seeds' default). */
export function providerFor(project: ProjectConfig, requested: Provider | undefined): Provider {
  return requested ?? project.provider ?? 'aws';
}

export function allowedDatabase(
  projectId: string,
  project: ProjectConfig,
  instanceId: string,
  field: string,
): DatabaseConfig {
  const db = project.databases[instanceId];
  if (!db) {
    throw new PolicyError(
      `${field}: instance "${instanceId}" does not belong to project "${projectId}" (its instances: ${Object.keys(project.databases).join(', ') || 'none'})`,
    );
  }
  return db;
}

export function allowedBucket(
  config: Config,
  projectId: string,
  bucket: string,
  field: string,
): ResolvedBucket {
  const project = projectOf(config, projectId);
  const storeName = project.buckets[bucket];
  if (storeName === undefined) {
    throw new PolicyError(
      `${field}: bucket "${bucket}" does not belong to project "${projectId}" (its buckets: ${Object.keys(project.buckets).join(', ') || 'none'})`,
    );
  }
  const store = config.stores[storeName];
  if (!store)
    throw new ValidationError(`projects.${projectId}.buckets.${bucket}: store "${storeName}" is not defined`);
  return { bucket, storeName, store };
}
