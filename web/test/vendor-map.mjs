// Lets node's tests load the vendored modules (web/vendor/) by the bare names the page's import
// map gives them: the same web/vendor/importmap.json, read here. `node --import
// ./web/test/vendor-map.mjs --test web/test/`.
import { register } from 'node:module';

register('./vendor-resolve.mjs', import.meta.url);
