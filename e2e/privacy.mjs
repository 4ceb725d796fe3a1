// Privacy check of the node's logs: no client UDP port or client address may appear in them.
//
//   node e2e/privacy.mjs --expect absent|present --exclude-ports 1,2,3 \
//        --addresses a.json[,b.json] log1 [log2 ...]
//
// The address files are written by browser.mjs (E2E_ADDRESSES_OUT) and aiortc_publish.py
// ({ports: [...], addresses: [...]}). A port matches as ":PORT", " PORT" or "=PORT" not followed
// by a digit; an address as itself not within a longer address. --expect absent fails on any hit
// (the real check); --expect present fails when nothing is found (the negative control, proving
// the check can fail). Prints the hits; exit code 0 on success.
import { readFileSync } from 'node:fs';

const argv = process.argv.slice(2);
const opt = (name, def) => {
  const i = argv.indexOf(name);
  if (i < 0) return def;
  const v = argv[i + 1];
  argv.splice(i, 2);
  return v;
};
const expect = opt('--expect', 'absent');
const exclude = new Set((opt('--exclude-ports', '') || '').split(',').filter(Boolean).map(Number));
const addrFiles = (opt('--addresses', '') || '').split(',').filter(Boolean);
const logs = argv;

const ports = new Set();
const addresses = new Set();
for (const f of addrFiles) {
  let d;
  try {
    d = JSON.parse(readFileSync(f, 'utf8'));
  } catch (e) {
    console.log(`privacy: cannot read ${f}: ${e.message}`);
    process.exit(1);
  }
  for (const p of d.ports || []) if (!exclude.has(p)) ports.add(p);
  for (const p of d.ports || []) if (exclude.has(p)) console.log(`privacy: client port ${p} equals a node port, not checked`);
  for (const a of d.addresses || []) addresses.add(a);
}
if (ports.size === 0) {
  console.log('privacy: no client ports captured: nothing to check against (fails)');
  process.exit(1);
}
const esc = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const patterns = [
  ...[...ports].map((p) => ({ what: `client port ${p}`, re: new RegExp(`[: =]${p}(?![0-9])`) })),
  ...[...addresses].map((a) => ({ what: `client address ${a}`, re: new RegExp(`(?<![0-9A-Za-z:.])${esc(a)}(?![0-9A-Za-z])`) })),
];
let hits = 0;
for (const f of logs) {
  // ANSI colour codes are stripped first, so that they cannot split an address from its port.
  const lines = readFileSync(f, 'utf8').replace(/\x1b\[[0-9;]*[A-Za-z]/g, '').split('\n');
  lines.forEach((line, n) => {
    for (const p of patterns) {
      if (p.re.test(line)) {
        hits += 1;
        if (hits <= 20) console.log(`privacy: ${p.what} in ${f}:${n + 1}: ${line.slice(0, 300)}`);
      }
    }
  });
}
console.log(
  `privacy: checked ${logs.length} log file(s) for ${ports.size} client ports and ${addresses.size} client addresses: ${hits} hit(s) (expected ${expect})`,
);
process.exit((expect === 'absent') === (hits === 0) ? 0 : 1);
