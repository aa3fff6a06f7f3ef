/**
 * Reads the V8 CPU profiles (*.cpuprofile) in a folder and prints, per profile, the functions with
 * the most self time, grouped by where they live (our code, a dependency, node internals).
 *
 *   npx tsx bench/profile-top.ts /tmp/prof [top=15]
 */
import fs from 'node:fs';
import path from 'node:path';

interface ProfileNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number }
interface Profile { nodes: ProfileNode[]; samples?: number[]; timeDeltas?: number[]; startTime: number; endTime: number }

const dir = process.argv[2];
const top = Number(process.argv[3] ?? 15);
if (!dir) {
  console.error('usage: bench/profile-top.ts <folder of .cpuprofile files> [top]');
  process.exit(2);
}

function where(url: string): string {
  if (!url) return '(native/gc/idle)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1]!;
  if (url.startsWith('node:')) return 'node';
  const repo = /\/(activities|services|shared|workflows|deploy)\/.*/.exec(url);
  return repo ? repo[0].slice(1) : path.basename(url);
}

for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'))) {
  const profile = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  (profile.samples ?? []).forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas?.[i] ?? 0)));
  const byFunction = new Map<string, number>();
  const byPlace = new Map<string, number>();
  let busy = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id)!;
    const name = node.callFrame.functionName || '(anonymous)';
    if (name === '(idle)' || name === '(program)') continue;
    busy += us;
    const place = where(node.callFrame.url);
    byFunction.set(`${name} ${place}:${node.callFrame.lineNumber + 1}`, (byFunction.get(`${name} ${place}:${node.callFrame.lineNumber + 1}`) ?? 0) + us);
    byPlace.set(place, (byPlace.get(place) ?? 0) + us);
  }
  console.log(`\n${file}: ${(busy / 1000).toFixed(0)} ms busy of ${((profile.endTime - profile.startTime) / 1000).toFixed(0)} ms`);
  console.log('  by place:');
  for (const [place, us] of [...byPlace].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`    ${((100 * us) / busy).toFixed(1).padStart(5)} %  ${place}`);
  console.log('  by function (self time):');
  for (const [fn, us] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`    ${((100 * us) / busy).toFixed(1).padStart(5)} %  ${fn}`);
}
