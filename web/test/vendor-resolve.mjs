// The resolve hook of vendor-map.mjs: a bare specifier that web/vendor/importmap.json maps (an
// exact name, or a prefix ending in '/') resolves to the vendored file, as in the page.
import { readFileSync } from 'node:fs';

const web = new URL('../', import.meta.url);
const map = JSON.parse(readFileSync(new URL('vendor/importmap.json', web), 'utf8'));
const prefixes = Object.keys(map)
  .filter((k) => k.endsWith('/'))
  .sort((a, b) => b.length - a.length);

export async function resolve(specifier, context, next) {
  const exact = map[specifier];
  const prefix = exact ? null : prefixes.find((p) => specifier.startsWith(p));
  const target = exact ?? (prefix ? map[prefix] + specifier.slice(prefix.length) : null);
  return next(target ? new URL(target, web).href : specifier, context);
}
