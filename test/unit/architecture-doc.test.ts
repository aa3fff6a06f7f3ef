/**
 * ARCHITECTURE.md and README.md name files as the place where things are decided: every path they
 * name must exist (a `<placeholder>` segment must match at least one entry), so a move or a rename
 * that forgets the documents fails here.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');
const TOP = ['activities', 'bench', 'deploy', 'docs', 'services', 'shared', 'test', 'workflows'];

/** Backticked repository paths in a markdown text (`shared/endpoint.ts`, `services/intake/admin/`). */
export function namedPaths(markdown: string): string[] {
  const found = new Set<string>();
  for (const [, token] of markdown.matchAll(/`([^`\s]+)`/g)) {
    const candidate = token!.replace(/[.,:;)]+$/, '');
    const top = candidate.split('/')[0]!;
    if (!TOP.includes(top) || !candidate.includes('/')) continue;
    if (/[*{}$]/.test(candidate)) continue; // globs and templates are not paths
    found.add(candidate);
  }
  return [...found];
}

/** Whether a path exists, a `<…>` segment standing for any entry of its directory. */
export function pathExists(root: string, candidate: string): boolean {
  const segments = candidate.replace(/\/$/, '').split('/');
  let dirs = [root];
  for (const segment of segments) {
    const next: string[] = [];
    for (const dir of dirs) {
      if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) continue;
      if (/<[^>]+>/.test(segment)) {
        const pattern = new RegExp(`^${segment.split(/<[^>]+>/).map((s) => s.replace(/[.+?^$()|[\]\\]/g, '\\$&')).join('[^/]+')}$`);
        for (const entry of fs.readdirSync(dir)) if (pattern.test(entry)) next.push(path.join(dir, entry));
      } else if (fs.existsSync(path.join(dir, segment))) next.push(path.join(dir, segment));
    }
    dirs = next;
  }
  return dirs.length > 0;
}

describe('ARCHITECTURE.md and README.md name files that exist', () => {
  for (const doc of ['ARCHITECTURE.md', 'README.md']) {
    it(`When ${doc} names a path, then that path exists in the repository`, () => {
      const paths = namedPaths(fs.readFileSync(path.join(ROOT, doc), 'utf8'));
      assert.ok(paths.length > 10, `${doc} names paths (found ${paths.length})`);
      const missing = paths.filter((p) => !pathExists(ROOT, p));
      assert.deepEqual(missing, [], `${doc} names paths that do not exist`);
    });
  }

  it('When a path is checked, then a missing file or a placeholder matching nothing is reported as missing', () => {
    assert.equal(pathExists(ROOT, 'shared/endpoint.ts'), true);
    assert.equal(pathExists(ROOT, 'activities/<kind>/index.ts'), true);
    assert.equal(pathExists(ROOT, 'shared/no-such-file.ts'), false);
    assert.equal(pathExists(ROOT, 'activities/<kind>/no-such-file.ts'), false);
    assert.deepEqual(namedPaths('see `shared/a.ts`, `npm test`, `test/**/*.ts` and `services/x/`.'), ['shared/a.ts', 'services/x/']);
  });
});
