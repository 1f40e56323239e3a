import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

// The import-cycle check that `npm test` runs first (scripts/check-cycles.mjs), on tiny source trees.
const script = fileURLToPath(new URL('../../scripts/check-cycles.mjs', import.meta.url));
const dirs: string[] = [];

function tree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'kasa-cycles-'));
  dirs.push(root);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

function check(root: string) {
  const run = spawnSync(process.execPath, [script, root], { encoding: 'utf8', cwd: root });
  return { code: run.status, out: `${run.stdout}${run.stderr}` };
}

after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('import-cycle check', () => {
  it('fails on a cycle through a type-only import and a re-export, printing it as a path', () => {
    const root = tree({
      'main.ts':
        "import { Part } from './parts/part.js';\nexport interface Status { n: number }\nnew Part();\n",
      'parts/part.ts':
        "import type { Status } from '../main.js';\nexport * from './index.js';\nexport class Part { s?: Status }\n",
      'parts/index.ts': "export { helper } from '../shared/helper.js';\n",
      'shared/helper.ts':
        '// import { Part } from "../parts/part.js"; (a comment is not an import)\nexport const helper = 1;\n',
    });
    const { code, out } = check(root);
    assert.equal(code, 1, out);
    assert.match(out, /1 import cycle/);
    assert.match(out, /main\.ts -> parts\/part\.ts -> main\.ts/);
    assert.doesNotMatch(out, /helper/);
  });

  it('passes a tree whose imports point one way, dynamic imports and packages included', () => {
    const root = tree({
      'main.ts':
        "import { a } from './a.js';\nimport yaml from 'yaml';\nconst b = await import('./b.js');\nexport const all = [a, b, yaml];\n",
      'a.ts': "import type { B } from './b.js';\nexport const a: B | null = null;\n",
      'b.ts': 'export type B = number;\n',
    });
    const { code, out } = check(root);
    assert.equal(code, 0, out);
    assert.match(out, /no import cycles among 3 modules/);
  });

  it('finds a cycle made by a dynamic import', () => {
    const root = tree({
      'a.ts': "export const load = () => import('./b.js');\n",
      'b.ts': "import { load } from './a.js';\nexport const again = load;\n",
    });
    const { code, out } = check(root);
    assert.equal(code, 1, out);
    assert.match(out, /a\.ts -> b\.ts -> a\.ts/);
  });
});
