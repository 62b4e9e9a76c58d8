import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { crdFiles } from './crd.ts';

const dir = join(import.meta.dirname, '..', '..', 'deploy', 'crds');

/** Every schema node under openAPIV3Schema, with its path. */
function schemaNodes(
  node: unknown,
  path: string,
  out: { path: string; node: Record<string, unknown> }[] = [],
) {
  if (node === null || typeof node !== 'object') return out;
  const schema = node as Record<string, unknown>;
  out.push({ path, node: schema });
  for (const [name, child] of Object.entries(
    (schema.properties as Record<string, unknown> | undefined) ?? {},
  )) {
    schemaNodes(child, `${path}.${name}`, out);
  }
  if (schema.items !== undefined) schemaNodes(schema.items, `${path}[]`, out);
  if (typeof schema.additionalProperties === 'object')
    schemaNodes(schema.additionalProperties, `${path}{}`, out);
  return out;
}

describe('generated CRDs', () => {
  it('match the committed files in deploy/crds (run `npm run generate` after changing api/v1alpha1)', () => {
    const generated = crdFiles();
    expect(readdirSync(dir).sort()).toEqual(Object.keys(generated).sort());
    for (const [name, text] of Object.entries(generated)) {
      expect(
        readFileSync(join(dir, name), 'utf8'),
        `deploy/crds/${name} is stale: run npm run generate`,
      ).toBe(text);
    }
  });

  it('are structural: every node typed; no $ref, $schema, const or additionalProperties beside properties', () => {
    for (const [name, text] of Object.entries(crdFiles())) {
      const crd = parse(text) as { spec: { versions: { schema: { openAPIV3Schema: unknown } }[] } };
      const nodes = schemaNodes(crd.spec.versions[0]?.schema.openAPIV3Schema, name);
      expect(nodes.length).toBeGreaterThan(20);
      for (const { path, node } of nodes) {
        expect(node.type, `${path} has no type`).toBeTypeOf('string');
        for (const bad of ['$ref', '$schema', 'const', 'anyOf', 'oneOf'])
          expect(node[bad], `${path}.${bad}`).toBeUndefined();
        if (node.properties !== undefined) expect(node.additionalProperties, path).toBeUndefined();
      }
    }
  });
});
