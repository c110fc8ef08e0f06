// widget.js is plain ES2018 (SPEC 7.18.4): it parses as a classic script with acorn set to
// ECMAScript 2018, so no later syntax (`?.`, `??`, class fields, …) slips in. Usage:
//   node es2018.mjs path/to/widget.js
import { parse } from 'acorn';
import { readFileSync } from 'node:fs';

const path = process.argv[2];
const source = readFileSync(path, 'utf8');
try {
  parse(source, { ecmaVersion: 2018, sourceType: 'script' });
} catch (e) {
  console.log(`FAILED: ${path} is not ES2018: ${e.message}`);
  process.exit(1);
}
console.log(`ok - ${path} parses as ES2018 (${Buffer.byteLength(source)} bytes)`);
