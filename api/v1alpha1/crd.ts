// The CustomResourceDefinitions, generated from the zod schemas (the single source of truth).
// `npm run generate` writes them to deploy/crds/; a unit test fails when the committed files
// drift. zod's JSON Schema is cleaned for Kubernetes' structural schemas: no $schema/$ref,
// no additionalProperties beside properties, no integer bounds beyond int64 use, no const.
import { stringify } from 'yaml';
import { z } from 'zod';
import { BackupRequestSpec, BackupRequestStatus } from './backupRequest.ts';
import { BackupScheduleSpec, BackupScheduleStatus } from './backupSchedule.ts';
import { group, version } from './common.ts';
import { RestoreRequestSpec, RestoreRequestStatus } from './restoreRequest.ts';

type Schema = Record<string, unknown>;

const SAFE_INT = Number.MAX_SAFE_INTEGER;

/** Makes a zod JSON Schema structural (https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#specifying-a-structural-schema). */
export function structural(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(structural);
  if (node === null || typeof node !== 'object') return node;
  const out: Schema = {};
  for (const [key, value] of Object.entries(node as Schema)) {
    if (key === '$schema' || key === 'id' || key === '$id') continue;
    if (key === 'additionalProperties' && value === false) continue;
    if ((key === 'minimum' || key === 'maximum') && Math.abs(value as number) >= SAFE_INT) continue;
    out[key] = structural(value);
  }
  return out;
}

function jsonSchema(schema: z.ZodType): Schema {
  return structural(z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' })) as Schema;
}

interface Rule {
  rule: string;
  message: string;
  fieldPath?: string;
}

function withRules(schema: Schema, rules: Rule[]): Schema {
  return rules.length === 0 ? schema : { ...schema, 'x-kubernetes-validations': rules };
}

function at(schema: Schema, path: string[], rules: Rule[]): Schema {
  if (path.length === 0) return withRules(schema, rules);
  const [head = '', ...rest] = path;
  const properties = schema.properties as Record<string, Schema>;
  return { ...schema, properties: { ...properties, [head]: at(properties[head] ?? {}, rest, rules) } };
}

interface KindSpec {
  kind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  spec: Schema;
  status: Schema;
  columns: { name: string; type: string; jsonPath: string; description: string; priority?: number }[];
}

const immutableSpec: Rule = {
  rule: 'self == oldSelf',
  message: 'spec is immutable: create a new resource instead of editing this one',
};

function crd(k: KindSpec): Schema {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${k.plural}.${group}`, labels: { 'app.kubernetes.io/part-of': 'lc2-backup' } },
    spec: {
      group,
      scope: 'Namespaced',
      names: {
        kind: k.kind,
        listKind: `${k.kind}List`,
        plural: k.plural,
        singular: k.singular,
        shortNames: k.shortNames,
        categories: ['lc2-backup'],
      },
      versions: [
        {
          name: version,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: k.columns,
          schema: {
            openAPIV3Schema: {
              type: 'object',
              required: ['spec'],
              properties: {
                apiVersion: { type: 'string' },
                kind: { type: 'string' },
                metadata: { type: 'object' },
                spec: k.spec,
                status: k.status,
              },
            },
          },
        },
      ],
    },
  };
}

const stateColumn = {
  name: 'State',
  type: 'string',
  jsonPath: '.status.state',
  description: 'Pending, InProgress, Succeeded or Failed',
};
const projectColumns = [
  { name: 'Project', type: 'string', jsonPath: '.spec.projectId', description: 'The project (tenant)' },
  {
    name: 'Environment',
    type: 'string',
    jsonPath: '.spec.environment',
    description: 'The environment, e.g. prd',
  },
];
const ageColumn = {
  name: 'Age',
  type: 'date',
  jsonPath: '.metadata.creationTimestamp',
  description: 'Time since creation',
};
const reasonColumn = {
  name: 'Reason',
  type: 'string',
  jsonPath: '.status.reason',
  description: 'Why, when not Succeeded',
  priority: 1,
};

export function backupRequestCrd(): Schema {
  let spec = withRules(jsonSchema(BackupRequestSpec), [immutableSpec]);
  spec = at(
    spec,
    ['documentLibrary'],
    [
      {
        rule: 'self.sourceBucket != self.destinationBucket',
        message: 'destinationBucket must differ from sourceBucket: back up into a separate bucket',
        fieldPath: '.destinationBucket',
      },
    ],
  );
  return crd({
    kind: 'BackupRequest',
    plural: 'backuprequests',
    singular: 'backuprequest',
    shortNames: ['br', 'brq'],
    spec,
    status: jsonSchema(BackupRequestStatus),
    columns: [
      stateColumn,
      ...projectColumns,
      {
        name: 'Size',
        type: 'string',
        jsonPath: '.status.documentLibrary.totalSize',
        description: 'Document library size',
      },
      { name: 'Duration', type: 'string', jsonPath: '.status.duration', description: 'Start to completion' },
      ageColumn,
      reasonColumn,
    ],
  });
}

export function restoreRequestCrd(): Schema {
  let spec = withRules(jsonSchema(RestoreRequestSpec), [immutableSpec]);
  spec = at(
    spec,
    ['source'],
    [
      {
        rule: 'has(self.backupRequestName) != has(self.backupId)',
        message: 'set exactly one of backupRequestName or backupId',
      },
    ],
  );
  spec = at(
    spec,
    ['target'],
    [
      {
        rule: "!has(self.mode) || self.mode == 'new'",
        message: 'in-place restore is not supported yet: restore into a new database and bucket (mode: new)',
        fieldPath: '.mode',
      },
    ],
  );
  return crd({
    kind: 'RestoreRequest',
    plural: 'restorerequests',
    singular: 'restorerequest',
    shortNames: ['rr', 'rrq'],
    spec,
    status: jsonSchema(RestoreRequestStatus),
    columns: [
      stateColumn,
      ...projectColumns,
      { name: 'Backup', type: 'string', jsonPath: '.status.backupId', description: 'The backup restored' },
      { name: 'Duration', type: 'string', jsonPath: '.status.duration', description: 'Start to completion' },
      ageColumn,
      reasonColumn,
    ],
  });
}

export function backupScheduleCrd(): Schema {
  return crd({
    kind: 'BackupSchedule',
    plural: 'backupschedules',
    singular: 'backupschedule',
    shortNames: ['bs', 'bsch'],
    spec: jsonSchema(BackupScheduleSpec),
    status: jsonSchema(BackupScheduleStatus),
    columns: [
      { name: 'Schedule', type: 'string', jsonPath: '.spec.schedule', description: 'Cron schedule' },
      { name: 'Suspend', type: 'boolean', jsonPath: '.spec.suspend', description: 'Paused' },
      {
        name: 'Project',
        type: 'string',
        jsonPath: '.spec.template.spec.projectId',
        description: 'The project (tenant)',
      },
      {
        name: 'Last Backup',
        type: 'date',
        jsonPath: '.status.lastSuccessfulTime',
        description: 'Last successful backup',
      },
      ageColumn,
    ],
  });
}

/** file name → YAML text, as committed in deploy/crds/. */
export function crdFiles(): Record<string, string> {
  const header = '# Generated from api/v1alpha1 by `npm run generate`. Do not edit.\n';
  const files: Record<string, string> = {};
  for (const def of [backupRequestCrd(), restoreRequestCrd(), backupScheduleCrd()]) {
    const name = (def.metadata as { name: string }).name;
    files[`${name}.yaml`] = header + stringify(def, { lineWidth: 0 });
  }
  return files;
}
