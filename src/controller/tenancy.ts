// A request acts for a project only from one of that project's namespaces, so a tenant cannot
// create a BackupRequest in its own namespace that names another project.
import { keyMatcher } from '../components/documentLibrary/patterns.ts';
import type { Config } from '../config/config.ts';
import { PolicyError } from '../errors/index.ts';

export function projectNamespaces(config: Config, projectId: string): string[] {
  return config.projects[projectId]?.namespaces ?? [`proj-${projectId}-*`];
}

/** Throws PolicyError (→ Failed, reason Forbidden) when `namespace` does not belong to `projectId`. */
export function requireProjectNamespace(config: Config, projectId: string, namespace: string): void {
  const allowed = projectNamespaces(config, projectId);
  if (!keyMatcher(allowed)(namespace)) {
    throw new PolicyError(
      `spec.projectId: namespace "${namespace}" does not belong to project "${projectId}" (its namespaces: ${allowed.join(', ')}); create the request in the project's namespace or add the namespace to projects.${projectId}.namespaces`,
    );
  }
}
