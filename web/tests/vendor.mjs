// vendor.mjs copies uPlot (pinned in package.json, MIT) from its npm package
// into ../ui/vendor/ with its LICENSE, so the UI works air-gapped with no CDN
// and no build step. Run after `npm ci`: `node vendor.mjs`.
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const src = join(here, 'node_modules', 'uplot');
const dst = join(here, '..', 'ui', 'vendor');
mkdirSync(dst, { recursive: true });
for (const [from, to] of [
  ['dist/uPlot.esm.js', 'uPlot.esm.js'],
  ['dist/uPlot.min.css', 'uPlot.min.css'],
  ['LICENSE', 'uPlot.LICENSE'],
]) {
  copyFileSync(join(src, from), join(dst, to));
  console.log(`vendored ${from} -> web/ui/vendor/${to}`);
}
