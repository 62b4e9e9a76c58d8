// `npm run generate`: writes the generated artifacts (the CRDs) from their sources: into
// deploy/crds/ and, identical, into the Helm chart's crds/. Unit tests fail when the committed
// files drift (api/v1alpha1/crd.test.ts, test/ops/artefacts.test.ts).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crdFiles } from '../api/v1alpha1/crd.ts';

const root = join(import.meta.dirname, '..');
for (const dir of ['deploy/crds', 'deploy/helm/lc2-backup/crds']) {
  mkdirSync(join(root, dir), { recursive: true });
  for (const [name, text] of Object.entries(crdFiles())) {
    writeFileSync(join(root, dir, name), text);
    process.stderr.write(`wrote ${dir}/${name}\n`);
  }
}
