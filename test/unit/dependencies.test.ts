/**
 * Dependency hygiene, read from the source and package.json / package-lock.json (no install, no
 * network):
 *  - every package the code imports or requires is declared: what production code imports
 *    (services/, shared/, activities/, workflows/ — the Docker image, which installs with
 *    `npm ci --omit=dev` — and deploy/, `npm start`) under `dependencies`; what tests, benchmarks
 *    and scripts import under `dependencies` or `devDependencies`;
 *  - every declared package is used: imported, run as a binary by an npm script, required by
 *    .mocharc.json or a `node --require` in a script, the `@types/` of a used package or of a
 *    tsconfig `types` entry, or on the short allow-list below with its reason;
 *  - `engines.node` is the real minimum: the lowest Node that every production package in the lock
 *    accepts, and the dev tooling (npm test) accepts it too.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { isBuiltin } from 'node:module';
import path from 'node:path';
import ts from 'typescript';

const ROOT = path.resolve(__dirname, '../..');
/** Shipped code: what these import must be installed by `npm ci --omit=dev`. */
const PRODUCTION_DIRS = ['services', 'shared', 'activities', 'workflows', 'deploy'];
/** Tests, benchmarks, scripts and the root tool configs: `dependencies` or `devDependencies`. */
const DEV_DIRS = ['test', 'bench', 'scripts'];
const DEV_ROOT_FILES = ['eslint.config.mjs'];
const SOURCE = /\.(?:[cm]?[jt]s|tsx)$/;
const SKIP_DIRS = new Set(['node_modules', '.data', 'test-artifacts', '.git']);

/** Declared packages no import, script or config shows in use, and why they stay. Keep it short. */
const ALLOWED_UNUSED: Record<string, string> = {};

interface PackageJson {
  engines?: { node?: string };
  scripts?: Record<string, string>;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  bin?: string | Record<string, string>;
  name?: string;
}
interface LockEntry {
  version?: string;
  dev?: boolean;
  engines?: Record<string, string> | string[];
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

function readJson<T>(file: string): T {
  return JSON.parse(fs.readFileSync(path.join(ROOT, file), 'utf8')) as T;
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (abs: string): void => {
    for (const entry of fs.readdirSync(abs, { withFileTypes: true })) {
      if (entry.isDirectory()) {
        if (!SKIP_DIRS.has(entry.name)) walk(path.join(abs, entry.name));
      } else if (SOURCE.test(entry.name) && !entry.name.endsWith('.d.ts')) out.push(path.relative(ROOT, path.join(abs, entry.name)));
    }
  };
  if (fs.existsSync(path.join(ROOT, dir))) walk(path.join(ROOT, dir));
  return out;
}

/** The package a bare specifier names (`@scope/pkg/sub` → `@scope/pkg`, `pkg/sub` → `pkg`); null for builtins and paths. */
export function packageOf(specifier: string): string | null {
  if (specifier.startsWith('.') || specifier.startsWith('/') || isBuiltin(specifier)) return null;
  const parts = specifier.split('/');
  if (specifier.startsWith('@')) return parts.length >= 2 ? `${parts[0]}/${parts[1]}` : null;
  return parts[0] || null;
}

/**
 * Every module specifier of a file: static imports and re-exports (type-only ones too: tsc needs
 * them installed), `require('…')`, `import('…')`, `import x = require('…')`, triple-slash type
 * references. The TypeScript scanner reads tokens, so comments and strings never count.
 */
export function specifiersOf(text: string): string[] {
  const info = ts.preProcessFile(text, true, true);
  return [...info.importedFiles.map((f) => f.fileName), ...info.typeReferenceDirectives.map((r) => `@types/${r.fileName}`)];
}

interface Use {
  pkg: string;
  file: string;
  specifier: string;
}

/**
 * A name that exists only as types (`declare module 'express-serve-static-core'`: no such runtime
 * package, only `@types/express-serve-static-core`) is a use of the `@types/` package: tsc needs
 * it, nothing loads it at run time (tsx strips types), so `devDependencies` is its place.
 */
function declaredName(pkg: string): string {
  const installed = (name: string): boolean => fs.existsSync(path.join(ROOT, 'node_modules', name, 'package.json'));
  const types = `@types/${pkg.startsWith('@') ? pkg.slice(1).replace('/', '__') : pkg}`;
  return !installed(pkg) && installed(types) ? types : pkg;
}

function importsIn(files: string[]): Use[] {
  const uses: Use[] = [];
  for (const file of files) {
    for (const specifier of specifiersOf(fs.readFileSync(path.join(ROOT, file), 'utf8'))) {
      const pkg = packageOf(specifier);
      if (pkg) uses.push({ pkg: declaredName(pkg), file, specifier });
    }
  }
  return uses;
}

/** `@types/foo` → `foo`, `@types/scope__name` → `@scope/name`. */
function typedPackage(typesPkg: string): string {
  const name = typesPkg.slice('@types/'.length);
  return name.includes('__') ? `@${name.replace('__', '/')}` : name;
}

/** Packages the npm scripts and .mocharc.json run: binaries (from each declared package's `bin`) and `--require` / `--import` modules. */
function toolUses(pkg: PackageJson, declared: string[]): Map<string, string> {
  const used = new Map<string, string>();
  const bins = new Map<string, string>();
  for (const name of declared) {
    const manifest = path.join(ROOT, 'node_modules', name, 'package.json');
    if (!fs.existsSync(manifest)) continue;
    const { bin } = JSON.parse(fs.readFileSync(manifest, 'utf8')) as PackageJson;
    if (typeof bin === 'string') bins.set(name.split('/').pop()!, name);
    else for (const b of Object.keys(bin ?? {})) bins.set(b, name);
  }
  for (const [script, command] of Object.entries(pkg.scripts ?? {})) {
    const words = command.split(/[\s&|;()]+/).filter(Boolean);
    words.forEach((word, i) => {
      const bin = bins.get(word);
      if (bin) used.set(bin, `npm script "${script}" runs ${word}`);
      if ((words[i - 1] === '--require' || words[i - 1] === '-r' || words[i - 1] === '--import') && packageOf(word)) used.set(packageOf(word)!, `npm script "${script}" loads ${word}`);
    });
  }
  const mocharc = readJson<{ require?: string[] }>('.mocharc.json');
  for (const r of mocharc.require ?? []) {
    const p = packageOf(r);
    if (p) used.set(p, `.mocharc.json requires ${r}`);
  }
  const tsconfig = readJson<{ compilerOptions?: { types?: string[] } }>('tsconfig.json');
  for (const t of tsconfig.compilerOptions?.types ?? []) used.set(`@types/${t}`, `tsconfig.json types: ${t}`);
  return used;
}

// ---- semver ranges, as far as engines fields need them -------------------------------------------

type Version = [number, number, number];
type Comparator = { op: '>=' | '<' | '>' | '<=' | '='; v: Version };

function cmp(a: Version, b: Version): number {
  return a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
}

/** A partial version: `20`, `20.3`, `20.x`, `*` → the numbers given (wildcards dropped). */
function partial(text: string): number[] {
  const nums: number[] = [];
  for (const part of text.replace(/^v/, '').replace(/-.*$/, '').split('.')) {
    if (part === '' || part === 'x' || part === 'X' || part === '*') break;
    if (!/^\d+$/.test(part)) throw new Error(`not a version: ${text}`);
    nums.push(Number(part));
  }
  return nums;
}
function full(nums: number[]): Version {
  return [nums[0] ?? 0, nums[1] ?? 0, nums[2] ?? 0];
}
/** The first version after a partial one: `20` → 21.0.0, `20.3` → 20.4.0. */
function after(nums: number[]): Version {
  if (nums.length === 1) return [nums[0]! + 1, 0, 0];
  if (nums.length === 2) return [nums[0]!, nums[1]! + 1, 0];
  return [nums[0]!, nums[1]!, nums[2]! + 1];
}

function comparators(op: string, text: string): Comparator[] {
  const nums = partial(text);
  if (nums.length === 0) return op === '<' || op === '>' ? [{ op: '<', v: [0, 0, 0] }] : [{ op: '>=', v: [0, 0, 0] }];
  const lo = full(nums);
  switch (op) {
    case '>=': return [{ op: '>=', v: lo }];
    case '>': return nums.length === 3 ? [{ op: '>', v: lo }] : [{ op: '>=', v: after(nums) }];
    case '<': return [{ op: '<', v: lo }];
    case '<=': return nums.length === 3 ? [{ op: '<=', v: lo }] : [{ op: '<', v: after(nums) }];
    case '~': return [{ op: '>=', v: lo }, { op: '<', v: nums.length === 1 ? [lo[0] + 1, 0, 0] : [lo[0], lo[1] + 1, 0] }];
    case '^': {
      const hi: Version = lo[0] > 0 || nums.length === 1 ? [lo[0] + 1, 0, 0] : lo[1] > 0 || nums.length === 2 ? [0, lo[1] + 1, 0] : [0, 0, lo[2] + 1];
      return [{ op: '>=', v: lo }, { op: '<', v: hi }];
    }
    default: return nums.length === 3 ? [{ op: '=', v: lo }] : [{ op: '>=', v: lo }, { op: '<', v: after(nums) }];
  }
}

/** A range as alternatives (`||`) of comparator sets; throws on a form it does not know. */
export function parseRange(range: string): Comparator[][] {
  return range.split('||').map((alternative) => {
    const text = alternative.trim();
    const hyphen = /^(\S+)\s+-\s+(\S+)$/.exec(text);
    if (hyphen) return [...comparators('>=', hyphen[1]!), ...comparators('<=', hyphen[2]!)];
    const set: Comparator[] = [];
    const token = /(>=|<=|>|<|=|\^|~)?\s*(v?[\dxX*]+(?:\.[\dxX*]+){0,2}(?:-[0-9A-Za-z.-]+)?)/gy;
    let rest = text;
    while (rest.trim()) {
      rest = rest.trimStart();
      token.lastIndex = 0;
      const m = token.exec(rest);
      if (!m) throw new Error(`unknown range form: ${range}`);
      set.push(...comparators(m[1] ?? '', m[2]!));
      rest = rest.slice(m[0].length);
    }
    return set.length ? set : comparators('', '*');
  });
}

function satisfiesSet(version: Version, set: Comparator[]): boolean {
  return set.every(({ op, v }) => {
    const c = cmp(version, v);
    return op === '>=' ? c >= 0 : op === '>' ? c > 0 : op === '<' ? c < 0 : op === '<=' ? c <= 0 : c === 0;
  });
}

export function satisfies(version: Version, range: string): boolean {
  return parseRange(range).some((set) => satisfiesSet(version, set));
}

/** The lowest version a range accepts (null when none). */
export function minimumOf(range: string): Version | null {
  let best: Version | null = null;
  for (const set of parseRange(range)) {
    let lo: Version = [0, 0, 0];
    for (const { op, v } of set) {
      if ((op === '>=' || op === '=') && cmp(v, lo) > 0) lo = v;
      if (op === '>' && cmp(after(v), lo) > 0) lo = after(v);
    }
    if (satisfiesSet(lo, set) && (!best || cmp(lo, best) < 0)) best = lo;
  }
  return best;
}

function nodeRanges(lock: { packages: Record<string, LockEntry> }, dev: boolean): Array<{ pkg: string; range: string }> {
  const out: Array<{ pkg: string; range: string }> = [];
  for (const [key, entry] of Object.entries(lock.packages)) {
    if (key === '' || Boolean(entry.dev) !== dev) continue;
    const engines = entry.engines;
    const range = engines && !Array.isArray(engines) ? engines.node : undefined;
    if (range) out.push({ pkg: `${key.replace(/^(.*\/)?node_modules\//, '')}@${entry.version ?? '?'}`, range });
  }
  return out;
}

// ---- the tests --------------------------------------------------------------------------------

describe('dependencies', () => {
  const pkg = readJson<PackageJson>('package.json');
  const deps = Object.keys(pkg.dependencies ?? {});
  const devDeps = Object.keys(pkg.devDependencies ?? {});
  const productionUses = importsIn(PRODUCTION_DIRS.flatMap(sourceFiles));
  const devUses = importsIn([...DEV_DIRS.flatMap(sourceFiles), ...DEV_ROOT_FILES.filter((f) => fs.existsSync(path.join(ROOT, f)))]);

  it('the scanner sees imports, requires and dynamic imports, and maps deep imports to their package', () => {
    const text = [
      "import { a } from 'zod';",
      "import type { B } from '@scope/pkg/deep/path';",
      "export * from 'reexported';",
      "// import x from 'in-a-comment';",
      "const s = \"import y from 'in-a-string'\";",
      "const c = require('twilio/lib/base/RequestClient') as unknown;",
      "const d = await import('dynamic');",
      "import fs from 'node:fs'; import path from 'path'; import { p } from './local';",
    ].join('\n');
    const found = specifiersOf(text).map(packageOf).filter((p): p is string => p !== null);
    assert.deepEqual(found.sort(), ['@scope/pkg', 'dynamic', 'reexported', 'twilio', 'zod']);
    assert.ok(productionUses.some((u) => u.pkg === 'express'), 'the scan reaches services/');
    assert.ok(productionUses.some((u) => u.file.startsWith('deploy/') && u.pkg === 'pg'), 'the scan reaches deploy/');
    assert.ok(devUses.some((u) => u.file === 'eslint.config.mjs' && u.pkg === 'typescript-eslint'), 'the scan reaches the root eslint config');
  });

  it('every package production code imports is under dependencies (npm ci --omit=dev installs it); types-only names are declared', () => {
    const missing = productionUses.filter((u) => (u.pkg.startsWith('@types/') ? !deps.includes(u.pkg) && !devDeps.includes(u.pkg) : !deps.includes(u.pkg)));
    assert.deepEqual(missing.map((u) => `${u.pkg} (${u.file}: '${u.specifier}')${devDeps.includes(u.pkg) ? ' is only a devDependency' : ' is not declared'}`), []);
  });

  it('every package tests, benchmarks and scripts import is declared', () => {
    const missing = devUses.filter((u) => !deps.includes(u.pkg) && !devDeps.includes(u.pkg));
    assert.deepEqual(missing.map((u) => `${u.pkg} (${u.file}: '${u.specifier}')`), []);
  });

  it('every declared package is used (imported, run by a script or config, the types of a used package, or allowed with a reason)', () => {
    const imported = new Set([...productionUses, ...devUses].map((u) => u.pkg));
    const tools = toolUses(pkg, [...deps, ...devDeps]);
    const used = (name: string): boolean => imported.has(name) || tools.has(name) || (name.startsWith('@types/') && (imported.has(typedPackage(name)) || tools.has(typedPackage(name))));
    const unused = [...deps, ...devDeps].filter((name) => !used(name) && !(name in ALLOWED_UNUSED));
    assert.deepEqual(unused, [], 'declared but never used: uninstall, or add to ALLOWED_UNUSED with the reason');
    for (const name of Object.keys(ALLOWED_UNUSED)) assert.ok(!used(name), `${name} is used now: take it off ALLOWED_UNUSED`);
  });

  it('a package production code does not import is not a production dependency (the image stays lean), except tools production runs', () => {
    const productionImports = new Set(productionUses.map((u) => u.pkg));
    // tsx: the services run as `node --require tsx/cjs services/<app>/main.ts` (Dockerfile CMD, compose, npm start).
    const runtimeTools = new Set(['tsx']);
    const devOnly = deps.filter((name) => !productionImports.has(name) && !runtimeTools.has(name));
    assert.deepEqual(devOnly, [], 'used only by tests, benchmarks or scripts: move to devDependencies');
  });

  it('package-lock.json is in step with package.json (npm ci would refuse it otherwise)', () => {
    const lock = readJson<{ packages: Record<string, LockEntry & PackageJson> }>('package-lock.json');
    const root = lock.packages[''];
    assert.ok(root, 'the lock has a root entry');
    assert.deepEqual(root.dependencies ?? {}, pkg.dependencies ?? {});
    assert.deepEqual(root.devDependencies ?? {}, pkg.devDependencies ?? {});
    assert.deepEqual(root.engines, pkg.engines);
    for (const name of [...deps, ...devDeps]) assert.ok(lock.packages[`node_modules/${name}`], `${name} is in the lock`);
  });

  describe('engines.node', () => {
    const lock = readJson<{ packages: Record<string, LockEntry> }>('package-lock.json');
    const production = nodeRanges(lock, false);
    const dev = nodeRanges(lock, true);

    it('the range reader knows the forms the lock uses', () => {
      assert.deepEqual(minimumOf('>=20.19.0'), [20, 19, 0]);
      assert.deepEqual(minimumOf('>= 20.3.0'), [20, 3, 0]);
      assert.deepEqual(minimumOf('^16 || ^18 || >=20'), [16, 0, 0]);
      assert.deepEqual(minimumOf('>=16 || 14 >=14.17'), [14, 17, 0]);
      assert.deepEqual(minimumOf('6.* || 8.* || >= 10.*'), [6, 0, 0]);
      assert.equal(satisfies([21, 0, 0], '^20.19.0 || >=22.12.0'), false);
      assert.equal(satisfies([20, 19, 0], '^20.19.0 || >=22.12.0'), true);
      assert.equal(satisfies([20, 18, 9], '>=20.19.0'), false);
      for (const { range } of [...production, ...dev]) assert.doesNotThrow(() => parseRange(range), range);
    });

    it('is ">=" the lowest Node every production package accepts', () => {
      let floor: Version = [0, 0, 0];
      let strictest = '(none)';
      for (const { pkg: name, range } of production) {
        const min = minimumOf(range);
        assert.ok(min, `${name}: engines.node ${range} accepts no version`);
        if (cmp(min, floor) > 0) [floor, strictest] = [min, `${name} (${range})`];
      }
      const refusing = production.filter(({ range }) => !satisfies(floor, range));
      assert.deepEqual(refusing, [], `${floor.join('.')} is refused by these: the minimum is higher`);
      assert.equal(pkg.engines?.node, `>=${floor.join('.')}`, `the strictest production package is ${strictest}`);
    });

    it('the dev tooling (npm test) runs on that minimum too, and so does this Node', () => {
      const floor = full(partial((pkg.engines?.node ?? '').replace(/^>=\s*/, '')));
      assert.deepEqual(dev.filter(({ range }) => !satisfies(floor, range)), []);
      assert.ok(satisfies(full(partial(process.versions.node)), pkg.engines?.node ?? '*'), `Node ${process.versions.node} against engines ${pkg.engines?.node}`);
    });
  });
});
