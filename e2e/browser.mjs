// End-to-end browser tests of a running relais node: headless Chromium publishes over WHIP and
// plays over WHEP. Run by scripts/e2e; usable alone:
//
//   RELAIS_PUBLIC=http://127.0.0.1:19090 node e2e/browser.mjs
//
// Environment:
//   RELAIS_PUBLIC          the node's public HTTP base URL (required)
//   E2E_TESTS              comma-separated tests (default: fanout,viewer-first,reconnect,demo)
//                          others: smoke (one publisher, one viewer), aiortc (viewer only, on
//                          E2E_AIORTC_STREAM, published by aiortc_publish.py)
//   E2E_ADDRESSES_OUT      JSON file to write the client candidate addresses/ports to
//   E2E_STREAM_PREFIX      prefix of the stream names (default: a random one)
//   E2E_CHROMIUM           browser binary (default /usr/bin/chromium)
//   E2E_TIMEOUT_MS         hard limit of the whole run (default 180000)
//   E2E_KEEP_ALL_CANDIDATES=1  send the non-loopback candidates to the node too
// Prints a final line `e2e-browser: N passed, M failed`; exit code 0 only when all passed.

import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const PUBLIC = (process.env.RELAIS_PUBLIC || '').replace(/\/+$/, '');
if (!PUBLIC) {
  console.error('e2e-browser: RELAIS_PUBLIC is not set');
  console.log('e2e-browser: 0 passed, 1 failed');
  process.exit(2);
}
const TESTS = (process.env.E2E_TESTS || 'fanout,viewer-first,reconnect,demo')
  .split(',')
  .map((t) => t.trim())
  .filter(Boolean);
const PREFIX = process.env.E2E_STREAM_PREFIX || `e2e${Math.random().toString(36).slice(2, 8)}`;
const EXE = process.env.E2E_CHROMIUM || '/usr/bin/chromium';
const TIMEOUT_MS = Number(process.env.E2E_TIMEOUT_MS || 180000);
const KEEP_ALL = process.env.E2E_KEEP_ALL_CANDIDATES === '1';
const HARNESS_URL = `${PUBLIC}/__relais_e2e__.html${KEEP_ALL ? '?keepall=1' : ''}`;
const PAGE_JS = readFileSync(join(here, 'page.js'), 'utf8');
const HARNESS_HTML = `<!doctype html><html><head><meta charset="utf-8"><title>relais e2e</title></head><body><script>${PAGE_JS}</script></body></html>`;

const ARGS = [
  '--headless=new',
  '--no-sandbox',
  '--allow-loopback-in-peer-connection',
  '--disable-features=WebRtcHideLocalIpsWithMdns',
  '--no-proxy-server',
  '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  '--autoplay-policy=no-user-gesture-required',
  '--disable-dev-shm-usage',
];

const t0 = Date.now();
const log = (...a) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s]`, ...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const results = [];
const captured = []; // candidate info of every session, for the privacy check
let browser = null;

function check(name, ok, detail = '') {
  results.push({ name, ok });
  log(`${ok ? 'PASS' : 'FAIL'} ${name}${detail ? ` — ${detail}` : ''}`);
  return ok;
}

async function finish(code) {
  if (process.env.E2E_ADDRESSES_OUT) {
    const ports = new Set();
    const addresses = new Set();
    for (const c of captured) {
      if (c.selected?.local?.port) ports.add(c.selected.local.port);
      // Every UDP candidate's port: the node may see any of them (Chromium also sends checks
      // to the node's loopback candidate from its other interfaces' sockets). Port 9 is the
      // placeholder of TCP candidates.
      for (const l of [...(c.localCandidates || []), ...(c.offerCandidates || [])]) {
        if (!l || !l.address) continue;
        if (l.port && l.port !== 9 && (l.protocol || 'udp') === 'udp') ports.add(l.port);
        if (!/^127\.|^::1$/.test(l.address) && !l.address.endsWith('.local')) addresses.add(l.address);
      }
    }
    writeFileSync(
      process.env.E2E_ADDRESSES_OUT,
      JSON.stringify(
        { ports: [...ports].sort((a, b) => a - b), addresses: [...addresses].sort(), sessions: captured },
        null,
        1,
      ),
    );
    log(`wrote ${ports.size} client ports and ${addresses.size} non-loopback addresses to ${process.env.E2E_ADDRESSES_OUT}`);
  }
  if (browser) await Promise.race([browser.close().catch(() => {}), sleep(5000)]);
  const passed = results.filter((r) => r.ok).length;
  const failed = results.length - passed + (code && results.every((r) => r.ok) ? 1 : 0);
  console.log(`e2e-browser: ${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

const hardStop = setTimeout(() => {
  log(`hard timeout of ${TIMEOUT_MS} ms reached`);
  results.push({ name: 'whole run within E2E_TIMEOUT_MS', ok: false });
  finish(1);
}, TIMEOUT_MS);
hardStop.unref();
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => finish(1));

let context;
async function harnessPage(name) {
  const page = await context.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') log(`[${name} console.${m.type()}] ${m.text()}`);
  });
  page.on('pageerror', (e) => log(`[${name} pageerror] ${e.message}`));
  await page.route(HARNESS_URL, (route) =>
    route.fulfill({ status: 200, contentType: 'text/html', body: HARNESS_HTML }),
  );
  await page.goto(HARNESS_URL, { timeout: 10000 });
  page.label = name;
  return page;
}

const publish = (page, stream, simulcast = true) =>
  page.evaluate(([b, s, sc]) => window.e2e.publish(b, s, { simulcast: sc }), [PUBLIC, stream, simulcast]);
const play = (page, stream) => page.evaluate(([b, s]) => window.e2e.play(b, s), [PUBLIC, stream]);
const stats = (page, i) => page.evaluate((j) => window.e2e.stats(j), i);
const stop = (page, i) => page.evaluate((j) => window.e2e.stop(j), i);

async function capture(page, i) {
  try {
    const s = await stats(page, i);
    captured.push({
      page: page.label,
      role: s.role,
      stream: s.stream,
      selected: s.selected,
      localCandidates: s.localCandidates,
      offerCandidates: s.offerCandidates,
    });
    return s;
  } catch (e) {
    log(`capture ${page.label}#${i}: ${e.message}`);
    return null;
  }
}

// Polls fn() every `every` ms until it returns true or `ms` passed; returns whether it did.
async function until(ms, fn, every = 250) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn()) return true;
    await sleep(every);
  }
  return false;
}

const fmtV = (s) =>
  s
    ? `conn=${s.connectionState} video frames=${s.video?.framesDecoded ?? 0} ${s.video?.frameWidth ?? '?'}x${s.video?.frameHeight ?? '?'} ssrc=${s.video?.ssrc ?? '-'} audio pkts=${s.audio?.packetsReceived ?? 0}`
    : 'no stats';

async function closeAll(pages) {
  for (const { page, i } of pages) {
    await capture(page, i);
    try {
      const st = await stop(page, i);
      log(`DELETE ${page.label}#${i} -> ${st}`);
    } catch (e) {
      log(`stop ${page.label}#${i}: ${e.message}`);
    }
  }
}

// Test 1: one simulcast publisher, two viewers.
async function testFanout(pages) {
  const stream = `${PREFIX}-fanout`;
  const [a, b, c] = pages;
  const pi = await publish(a, stream, true);
  const ps = await stats(a, pi);
  log(`publisher POST ok, Location ${ps.location}; answer has a=simulcast:recv: ${ps.answerHasSimulcastRecv}`);
  const [bi, ci] = await Promise.all([play(b, stream), play(c, stream)]);
  let sb, sc;
  const ok = await until(20000, async () => {
    [sb, sc] = await Promise.all([stats(b, bi), stats(c, ci)]);
    return [sb, sc].every((s) => s.video?.framesDecoded > 100 && s.audio?.packetsReceived > 200);
  });
  const pub = await stats(a, pi);
  const layers = pub.outbound.filter((o) => o.kind === 'video');
  log(`publisher video layers: ${layers.map((o) => `${o.rid ?? '-'}:${o.frameWidth ?? '?'}x${o.frameHeight ?? '?'} ${o.bytesSent}B`).join(', ')}`);
  if (layers.filter((o) => o.bytesSent > 0).length < 3) log('note: fewer than 3 simulcast layers are being sent');
  for (const [n, s] of [['B', sb], ['C', sc]]) {
    log(`viewer ${n}: ${fmtV(s)}; time from WHEP POST to first decoded frame: ${s?.firstFrameMs ?? 'none'} ms`);
    console.log(`e2e-metric: fanout viewer ${n} first-frame-ms ${s?.firstFrameMs ?? -1}`);
  }
  check('fanout: simulcast publisher, 2 WHEP viewers each decode >100 video frames and >200 audio packets within 20 s', ok,
    `B ${fmtV(sb)} | C ${fmtV(sc)}`);
  await closeAll([{ page: b, i: bi }, { page: c, i: ci }, { page: a, i: pi }]);
}

// Test 2: the viewer comes before the publisher.
async function testViewerFirst(pages) {
  const stream = `${PREFIX}-viewerfirst`;
  const [a, b] = pages;
  const vi = await play(b, stream);
  log('viewer POSTed before any publisher');
  await sleep(1000);
  const pi = await publish(a, stream, true);
  let sv;
  const ok = await until(15000, async () => {
    sv = await stats(b, vi);
    return sv.video?.framesDecoded > 30;
  });
  check('viewer-first: a viewer that came before the publisher decodes >30 frames within 15 s', ok, fmtV(sv));
  await closeAll([{ page: b, i: vi }, { page: a, i: pi }]);
}

// Test 3: the publisher goes away and comes back on the same stream; the viewer keeps its session.
async function testReconnect(pages) {
  const stream = `${PREFIX}-reconnect`;
  const [a, b] = pages;
  const pi = await publish(a, stream, true);
  const vi = await play(b, stream);
  let sv;
  const started = await until(15000, async () => {
    sv = await stats(b, vi);
    return sv.video?.framesDecoded > 30;
  });
  if (!check('reconnect: viewer decodes >30 frames before the publisher reconnects', started, fmtV(sv))) {
    await closeAll([{ page: b, i: vi }, { page: a, i: pi }]);
    return;
  }
  const ssrcBefore = sv.video.ssrc;
  const lostBefore = { video: sv.video.packetsLost ?? 0, audio: sv.audio?.packetsLost ?? 0 };
  await capture(a, pi);
  const del = await stop(a, pi);
  log(`publisher DELETE -> ${del}`);
  check('reconnect: DELETE of the WHIP session answers 200', del === 200 || del === 204, `status ${del}`);
  await sleep(500);
  const pi2 = await publish(a, stream, true);
  const base = (await stats(b, vi)).video?.framesDecoded ?? 0;
  log(`publisher published again (new WHIP session); viewer frames at that point: ${base}`);
  const grew = await until(15000, async () => {
    sv = await stats(b, vi);
    return (sv.video?.framesDecoded ?? 0) > base + 30;
  });
  check('reconnect: viewer framesDecoded grows by >30 within 15 s after the new WHIP session', grew,
    `${base} -> ${sv.video?.framesDecoded}`);
  check('reconnect: the viewer keeps the same video SSRC and never renegotiated',
    sv.video?.ssrc === ssrcBefore && sv.negotiations === 1 && sv.connectionState === 'connected',
    `ssrc ${ssrcBefore} -> ${sv.video?.ssrc} (inbound video streams: ${sv.videos.length}), offers ${sv.negotiations}, conn ${sv.connectionState}`);
  // Sequence continuity: a jump in the viewer's sequence numbers shows up as lost packets.
  // Timestamp continuity: a jump in RTP time not matched by arrival time shows up as jitter.
  const lostVideo = (sv.video?.packetsLost ?? 0) - lostBefore.video;
  const lostAudio = (sv.audio?.packetsLost ?? 0) - lostBefore.audio;
  check('reconnect: sequence numbers continue (viewer counts < 20 lost packets across it)',
    lostVideo < 20 && lostAudio < 20, `lost video +${lostVideo}, audio +${lostAudio}`);
  check('reconnect: timestamps continue (viewer audio jitter < 0.25 s after it)',
    (sv.audio?.jitter ?? 1) < 0.25, `audio jitter ${sv.audio?.jitter} s, video jitter ${sv.video?.jitter} s`);
  await closeAll([{ page: b, i: vi }, { page: a, i: pi2 }]);
}

// Test 4: the node's demo pages auto-start and play.
async function testDemo() {
  const stream = `${PREFIX}-demo`;
  const pubPath = process.env.E2E_DEMO_PUBLISH_PATH || '/publish.html';
  const watchPath = process.env.E2E_DEMO_WATCH_PATH || '/watch.html';
  const open = async (name, path, extra) => {
    const page = await context.newPage();
    page.label = name;
    page.on('pageerror', (e) => log(`[${name} pageerror] ${e.message}`));
    const url = `${PUBLIC}${path}?stream=${encodeURIComponent(stream)}&autostart=1${extra}`;
    const resp = await page.goto(url, { timeout: 10000 }).catch((e) => ({ status: () => String(e.message).split('\n')[0] }));
    log(`GET ${url} -> ${resp?.status()}`);
    return { page, status: resp?.status() };
  };
  const demoStats = (page) =>
    page.evaluate(async () => {
      const d = window.relaisDemo;
      if (!d || !d.pc) return { exposed: !!d };
      const st = { exposed: true, connectionState: d.pc.connectionState, framesDecoded: 0 };
      (await d.pc.getStats()).forEach((r) => {
        if (r.type === 'inbound-rtp' && r.kind === 'video') st.framesDecoded = Math.max(st.framesDecoded, r.framesDecoded || 0);
      });
      return st;
    }).catch((e) => ({ error: e.message }));
  const p = await open('demo-publish', pubPath, '&simulcast=0');
  const w = await open('demo-watch', watchPath, '');
  check('demo: publish and watch pages load (200)', p.status === 200 && w.status === 200, `publish ${p.status}, watch ${w.status}`);
  let sp = {}, sw = {};
  const ok = await until(15000, async () => {
    [sp, sw] = await Promise.all([demoStats(p.page), demoStats(w.page)]);
    return sp.connectionState === 'connected' && sw.connectionState === 'connected' && sw.framesDecoded > 10;
  }, 500);
  check('demo: auto-started pages expose relaisDemo, both connect, the watcher decodes >10 frames', ok,
    `publish ${JSON.stringify(sp)}, watch ${JSON.stringify(sw)}`);
  for (const x of [w.page, p.page]) await x.close().catch(() => {});
}

// One publisher (no simulcast), one viewer: the short check run at the default log level and for
// the negative control of the privacy check.
async function testSmoke(pages) {
  const stream = `${PREFIX}-smoke`;
  const [a, b] = pages;
  const pi = await publish(a, stream, false);
  const vi = await play(b, stream);
  let sv;
  const ok = await until(15000, async () => {
    sv = await stats(b, vi);
    return sv.video?.framesDecoded > 30 && sv.audio?.packetsReceived > 50;
  });
  log(`viewer: time from WHEP POST to first decoded frame: ${sv?.firstFrameMs ?? 'none'} ms`);
  check('smoke: publisher and viewer, viewer decodes >30 frames and >50 audio packets within 15 s', ok, fmtV(sv));
  await closeAll([{ page: b, i: vi }, { page: a, i: pi }]);
}

// The aiortc publisher (aiortc_publish.py) is already publishing; a browser viewer decodes it.
async function testAiortc(pages) {
  const stream = process.env.E2E_AIORTC_STREAM;
  if (!stream) return check('aiortc: E2E_AIORTC_STREAM is set', false);
  const [, b] = pages;
  const vi = await play(b, stream);
  let sv;
  const ok = await until(20000, async () => {
    sv = await stats(b, vi);
    return sv.video?.framesDecoded > 50;
  });
  log(`viewer: time from WHEP POST to first decoded frame: ${sv?.firstFrameMs ?? 'none'} ms`);
  check('aiortc: a browser viewer decodes >50 frames of the aiortc (WHIP) publisher within 20 s', ok, fmtV(sv));
  await closeAll([{ page: b, i: vi }]);
}

const TABLE = {
  fanout: testFanout,
  'viewer-first': testViewerFirst,
  reconnect: testReconnect,
  demo: testDemo,
  smoke: testSmoke,
  aiortc: testAiortc,
};

try {
  const unknown = TESTS.filter((t) => !TABLE[t]);
  if (unknown.length) throw new Error(`unknown tests: ${unknown.join(', ')}`);
  log(`launching ${EXE}; node at ${PUBLIC}; tests: ${TESTS.join(', ')}`);
  browser = await chromium.launch({ executablePath: EXE, headless: false, args: ARGS, timeout: 30000 });
  context = await browser.newContext({ permissions: ['camera', 'microphone'] });
  log(`browser ${browser.version()} up`);
  const needsPages = TESTS.some((t) => t !== 'demo');
  const pages = needsPages
    ? await Promise.all(['A', 'B', 'C'].slice(0, TESTS.includes('fanout') ? 3 : 2).map(harnessPage))
    : [];
  for (const t of TESTS) {
    log(`--- ${t}`);
    try {
      await TABLE[t](pages);
    } catch (e) {
      check(`${t}: ran without error`, false, e.message.split('\n')[0]);
    }
  }
} catch (e) {
  check('browser launched and harness pages loaded', false, e.message.split('\n')[0]);
}
await finish(0);
