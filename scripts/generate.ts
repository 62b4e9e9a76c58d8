// `npm run generate`: writes the generated artifacts (the CRDs in deploy/crds/) from their
// sources. A unit test (api/v1alpha1/crd.test.ts) fails when the committed files drift.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crdFiles } from '../api/v1alpha1/crd.ts';

const dir = join(import.meta.dirname, '..', 'deploy', 'crds');
mkdirSync(dir, { recursive: true });
for (const [name, text] of Object.entries(crdFiles())) {
  writeFileSync(join(dir, name), text);
  process.stderr.write(`wrote deploy/crds/${name}\n`);
}
