// Lists the vendored modules reachable by static imports from ts-mls' entry (what the page and
// the tests load), resolving bare names through web/vendor/importmap.json. vendor.sh keeps only
// these; a bare name no entry of the map resolves is an error.
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';

const [root] = process.argv.slice(2); // web/
const map = JSON.parse(readFileSync(path.join(root, 'vendor/importmap.json'), 'utf8'));
const resolveBare = (spec) => {
  if (map[spec]) return map[spec];
  const prefix = Object.keys(map).filter((k) => k.endsWith('/') && spec.startsWith(k)).sort((a, b) => b.length - a.length)[0];
  if (!prefix) throw new Error(`no import map entry for ${spec}`);
  return map[prefix] + spec.slice(prefix.length);
};
const seen = new Set();
// The entry, and the deep modules web/crypto/member.js imports.
const todo = ['ts-mls', 'ts-mls/messageProtection.js', 'ts-mls/keyPackage.js'].map((m) => path.join(root, resolveBare(m)));
const STATIC = /(?:^|[;\n}])\s*(?:import|export)\s[^;'"]*?from\s*['"]([^'"]+)['"]|(?:^|[;\n])\s*import\s*['"]([^'"]+)['"]/g;
while (todo.length) {
  const file = path.normalize(todo.pop());
  if (seen.has(file)) continue;
  if (!existsSync(file)) throw new Error(`missing module ${file}`);
  seen.add(file);
  const text = readFileSync(file, 'utf8');
  for (const m of text.matchAll(STATIC)) {
    const spec = m[1] ?? m[2];
    todo.push(spec.startsWith('.') ? path.join(path.dirname(file), spec) : path.join(root, resolveBare(spec)));
  }
}
for (const f of [...seen].sort()) console.log(path.relative(root, f));
