// End-to-end test of relais's Jitsi path: this script plays Jicofo (allocates endpoints with
// Colibri2 on the node's private listener, builds the SDP offers, forwards the answers' transport
// and sources back), headless Chromium pages play lib-jitsi-meet clients (e2e/colibri-client.js:
// Jitsi-style simulcast munging, VP9 SVC, the bridge-channel WebSocket). Run by scripts/e2e;
// usable alone:
//
//   RELAIS_PUBLIC=http://127.0.0.1:9090 RELAIS_PRIVATE=http://127.0.0.1:8080 node e2e/colibri.mjs
//   E2E_COLIBRI_SELFTEST=1 node e2e/colibri.mjs     # no node: the SDP building, munging and
//                                                   # simulcast/SVC sending against a fake
//                                                   # bridge made of RTCPeerConnections
//
// Steps (each printed as PASS/FAIL):
//   1. A, B, C join one conference one after the other (VP8, 3-layer simulcast by SSRC munging);
//      the earlier ones are re-offered the newcomer's m-lines; each opens the bridge channel.
//   2. every page decodes video from both others and receives their audio;
//   3. A asks maxHeight 720 (B and C the thumbnail default, 180): A decodes both remotes above
//      180; A asks 180: within 3 s both are <= 180; A lifts it: both rise above 180 again;
//   4. D joins publishing VP9 with scalabilityMode L3T3 (full SVC; E2E_VP9_MODE=L3T3_KEY for
//      the K-SVC mode Jitsi Meet asks for; one SSRC + RTX, no SIM group):
//      A (maxHeight 180) decodes D's frames <= 180 high, B (D on stage, 720) larger ones.
//
// E2E_COLIBRI_BWE=1 runs the bandwidth-estimation test instead (scripts/bwe-netns sets it up:
// the node and this script in one network namespace, a second Chromium behind a rate-capped
// veth): the offers negotiate transport-cc, P publishes 3-layer VP8 simulcast, U (same browser,
// uncapped) and R (the capped browser, E2E_CAPPED_CHROMIUM) receive only and put P on stage
// (maxHeight 720). Once P's 720p layer runs at >= E2E_BWE_TOP_MIN_KBPS (1200) kbit/s, more
// than the capped link carries, E2E_BWE_SETTLE_S (10) s to settle, then E2E_BWE_MEASURE_S (20)
// s of samples every 200 ms: R must decode P at <= 360 and U above 360, neither with a freeze
// (framesDecoded not growing) of 1 s or more. Reports heights, rates, freezeCount, the node's
// ConnectionStats estimates and counters.
//
// Environment:
//   RELAIS_PRIVATE   the node's private base URL (Colibri2), default http://127.0.0.1:8080
//   RELAIS_PUBLIC    the origin the pages are served from (default http://127.0.0.1:9090);
//                    the bridge channel URL comes from the Colibri2 answer
//   E2E_CHROMIUM     browser binary (default /usr/bin/chromium)
//   E2E_COLIBRI_TIMEOUT_MS  hard limit of the whole run (default 115000; the runner's
//                    E2E_TIMEOUT_MS is for browser.mjs)
//   E2E_CAPTURE      camera size WxHxFPS (default 1280x720x15)
//   E2E_START_BITRATE  x-google-start-bitrate of the offered video codecs (default 800, Jicofo's)
//   E2E_KEEP_ALL_CANDIDATES=1  send the non-loopback client candidates to the node too
//   E2E_TRANSPORT_CC=1  offer transport-cc (header extension and feedback; on in the BWE test)
//   E2E_COLIBRI_BWE=1, E2E_CAPPED_CHROMIUM, E2E_BWE_SETTLE_S, E2E_BWE_MEASURE_S, E2E_BWE_CAP_KBPS,
//   E2E_BWE_TOP_MIN_KBPS  the bandwidth-estimation test (above); E2E_BWE_CAP_KBPS is only reported
//   E2E_FAKE_VIDEO   a .y4m file the main browser's fake camera plays (scripts/bwe-netns makes one)
// Prints a final line `e2e-browser: N passed, M failed`; exit code 0 only when all passed.

import { readFileSync, writeFileSync } from 'node:fs';
import { randomBytes, randomUUID } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const PRIVATE = (process.env.RELAIS_PRIVATE || 'http://127.0.0.1:8080').replace(/\/+$/, '');
const PUBLIC = (process.env.RELAIS_PUBLIC || 'http://127.0.0.1:9090').replace(/\/+$/, '');
const SELFTEST = process.env.E2E_COLIBRI_SELFTEST === '1' || process.argv.includes('--selftest');
const EXE = process.env.E2E_CHROMIUM || '/usr/bin/chromium';
const TIMEOUT_MS = Number(process.env.E2E_COLIBRI_TIMEOUT_MS || 115000);
const BWE = process.env.E2E_COLIBRI_BWE === '1';
// The BWE test's node is bound to a veth address, not loopback: its pages' veth candidates count.
const KEEP_ALL = process.env.E2E_KEEP_ALL_CANDIDATES === '1' || BWE;
const TRANSPORT_CC = process.env.E2E_TRANSPORT_CC === '1' || BWE;
const TCC_URI = 'http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01';
const CAPPED_EXE = process.env.E2E_CAPPED_CHROMIUM || '';
const SETTLE_S = Number(process.env.E2E_BWE_SETTLE_S || 10);
// A .y4m/.mjpeg file the main browser's fake camera plays instead of its drawn pattern, whose
// top simulcast layer costs little more than 0.5 Mbit/s at 720p, so it fits a 1 Mbit/s link.
const FAKE_VIDEO = process.env.E2E_FAKE_VIDEO || '';
const MEASURE_S = Number(process.env.E2E_BWE_MEASURE_S || 20);
const [CAP_W, CAP_H, CAP_FPS] = (process.env.E2E_CAPTURE || '1280x720x15').split('x').map(Number);
const START_BITRATE = process.env.E2E_START_BITRATE || '800';
const PAGE_URL = `${PUBLIC}/__relais_e2e_colibri__.html`;
const CLIENT_JS = readFileSync(join(here, 'colibri-client.js'), 'utf8');
const PAGE_HTML = `<!doctype html><html><head><meta charset="utf-8"><title>relais colibri e2e</title></head><body><script>${CLIENT_JS}</script></body></html>`;

// The same flags as browser.mjs (loopback ICE, no mDNS candidates, no network but 127.0.0.1),
// and no Local Network Access checks: the page is served by request interception, so Chromium
// does not know it comes from loopback and would block its WebSocket to 127.0.0.1. A public
// listener on another address (the BWE test's veth) is excluded from the resolver's mapping
// too, and treated as a secure origin; the host candidates are plain addresses (no mDNS).
const PUBLIC_HOST = new URL(PUBLIC).hostname;
const ARGS = [
  '--headless=new',
  '--no-sandbox',
  '--allow-loopback-in-peer-connection',
  '--disable-features=WebRtcHideLocalIpsWithMdns,LocalNetworkAccessChecks',
  '--no-proxy-server',
  `--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1${PUBLIC_HOST !== '127.0.0.1' ? ` , EXCLUDE ${PUBLIC_HOST}` : ''}`,
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  '--autoplay-policy=no-user-gesture-required',
  '--disable-dev-shm-usage',
  // A non-loopback origin is not a secure context: no getUserMedia without this.
  ...(PUBLIC_HOST !== '127.0.0.1' ? [`--unsafely-treat-insecure-origin-as-secure=${new URL(PUBLIC).origin}`] : []),
];

const t0 = Date.now();
const log = (...a) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s]`, ...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const results = [];
let browser = null;
let cappedContext = null;
let cappedBrowser = null; // the BWE test's second Chromium, behind the capped link

function check(name, ok, detail = '') {
  results.push({ name, ok });
  log(`${ok ? 'PASS' : 'FAIL'} ${name}${detail ? ` — ${detail}` : ''}`);
  return ok;
}

// Every client candidate seen in the pages' answers (all of them, sent to the node or not),
// for the privacy check of the node's log (E2E_ADDRESSES_OUT, the format browser.mjs writes).
const clientCandidates = [];

// The VP9 publisher's SVC mode: full SVC as the issue asks; Jitsi Meet itself uses L3T3_KEY.
const VP9_MODE = process.env.E2E_VP9_MODE || 'L3T3';

let finishing = false;
async function finish(code) {
  if (finishing) return;
  finishing = true;
  if (process.env.E2E_ADDRESSES_OUT) {
    const ports = new Set();
    const addresses = new Set();
    for (const c of clientCandidates) {
      if (c.port && Number(c.port) !== 9) ports.add(Number(c.port));
      if (!isLoopback(c.ip) && !c.ip.endsWith('.local')) addresses.add(c.ip);
    }
    writeFileSync(
      process.env.E2E_ADDRESSES_OUT,
      JSON.stringify({ ports: [...ports].sort((a, b) => a - b), addresses: [...addresses].sort() }, null, 1),
    );
    log(`wrote ${ports.size} client ports and ${addresses.size} non-loopback addresses to ${process.env.E2E_ADDRESSES_OUT}`);
  }
  for (const b of [browser, cappedBrowser]) if (b) await Promise.race([b.close().catch(() => {}), sleep(5000)]);
  const passed = results.filter((r) => r.ok).length;
  const failed = results.length - passed + (code && results.every((r) => r.ok) ? 1 : 0);
  console.log(`e2e-browser: ${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

const hardStop = setTimeout(() => {
  log(`hard timeout of ${TIMEOUT_MS} ms reached`);
  results.push({ name: 'whole run within E2E_COLIBRI_TIMEOUT_MS', ok: false });
  finish(1);
}, TIMEOUT_MS);
hardStop.unref();
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => finish(1));

async function until(ms, fn, every = 250) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn()) return true;
    await sleep(every);
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// What Jicofo offers (Colibri2 `medias`); the SDP m-lines are built from the same description.
const MEDIAS = [
  {
    type: 'audio',
    'payload-types': [
      {
        name: 'opus',
        id: '111',
        clockrate: '48000',
        channels: '2',
        parameters: { minptime: '10', useinbandfec: '1' },
        ...(TRANSPORT_CC ? { 'rtcp-fbs': [{ type: 'transport-cc' }] } : {}),
      },
    ],
    'rtp-hdrexts': [
      { uri: 'urn:ietf:params:rtp-hdrext:ssrc-audio-level', id: 1 },
      ...(TRANSPORT_CC ? [{ uri: TCC_URI, id: 5 }] : []),
    ],
  },
  {
    type: 'video',
    'payload-types': [
      ['VP8', '100'],
      ['rtx', '96', '100'],
      ['VP9', '101'],
      ['rtx', '97', '101'],
    ].map(([name, id, apt]) =>
      apt
        ? { name, id, clockrate: '90000', parameters: { apt } }
        : {
            name,
            id,
            clockrate: '90000',
            parameters: { 'x-google-start-bitrate': START_BITRATE },
            'rtcp-fbs': [
              { type: 'ccm', subtype: 'fir' },
              { type: 'nack' },
              { type: 'nack', subtype: 'pli' },
              ...(TRANSPORT_CC ? [{ type: 'transport-cc' }] : []),
            ],
          },
    ),
    'rtp-hdrexts': [
      { uri: 'http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time', id: 3 },
      ...(TRANSPORT_CC ? [{ uri: TCC_URI, id: 5 }] : []),
    ],
  },
];

const hex8 = () => randomBytes(4).toString('hex');

// ---- SDP (the Jicofo side) ----
function mediaSection(kind, mid, direction, transport, withCandidates, ssrcLines) {
  const m = MEDIAS.find((x) => x.type === kind);
  const pts = m['payload-types'];
  const L = [
    `m=${kind} 9 UDP/TLS/RTP/SAVPF ${pts.map((p) => p.id).join(' ')}`,
    'c=IN IP4 0.0.0.0',
    'a=rtcp:9 IN IP4 0.0.0.0',
    `a=ice-ufrag:${transport.ufrag}`,
    `a=ice-pwd:${transport.pwd}`,
    ...transport.fingerprints.map((f) => `a=fingerprint:${f.hash} ${f.fingerprint}`),
    'a=setup:actpass',
    `a=mid:${mid}`,
    ...m['rtp-hdrexts'].map((e) => `a=extmap:${e.id} ${e.uri}`),
    `a=${direction}`,
    'a=rtcp-mux',
  ];
  for (const p of pts) {
    L.push(`a=rtpmap:${p.id} ${p.name}/${p.clockrate}${p.channels ? `/${p.channels}` : ''}`);
    for (const fb of p['rtcp-fbs'] || []) L.push(`a=rtcp-fb:${p.id} ${fb.type}${fb.subtype ? ` ${fb.subtype}` : ''}`);
    const params = Object.entries(p.parameters || {});
    if (params.length) L.push(`a=fmtp:${p.id} ${params.map(([k, v]) => `${k}=${v}`).join(';')}`);
  }
  L.push(...ssrcLines);
  if (withCandidates) {
    for (const c of transport.candidates) {
      const rel = c['rel-addr'] ? ` raddr ${c['rel-addr']} rport ${c['rel-port']}` : '';
      L.push(
        `a=candidate:${c.foundation} ${c.component} ${c.protocol} ${c.priority} ${c.ip} ${c.port} typ ${c.type}${rel} generation ${c.generation ?? 0}`,
      );
    }
    L.push('a=end-of-candidates');
  }
  return L;
}

// The offer to one participant: its own audio + video (sendrecv, first), then an audio and a
// video m-line (sendonly) per other participant, in join order (so renegotiations only append).
// others: [{ id, audio: ssrc, video: primary ssrc, rtx: ssrc | null }]
function buildOffer(transport, others, version) {
  const sections = [
    mediaSection('audio', '0', 'sendrecv', transport, true, []),
    mediaSection('video', '1', 'sendrecv', transport, false, []),
  ];
  others.forEach((o, i) => {
    const stream = `${o.id}-stream`;
    const a = [`a=msid:${stream} ${o.id}-a0`, `a=ssrc:${o.audio} cname:${o.id}`, `a=ssrc:${o.audio} msid:${stream} ${o.id}-a0`];
    const vs = o.rtx ? [o.video, o.rtx] : [o.video];
    const v = [`a=msid:${stream} ${o.id}-v0`];
    if (o.rtx) v.push(`a=ssrc-group:FID ${o.video} ${o.rtx}`);
    for (const s of vs) v.push(`a=ssrc:${s} cname:${o.id}`, `a=ssrc:${s} msid:${stream} ${o.id}-v0`);
    sections.push(mediaSection('audio', String(2 + 2 * i), 'sendonly', transport, false, a));
    sections.push(mediaSection('video', String(3 + 2 * i), 'sendonly', transport, false, v));
  });
  const mids = sections.map((s) => s.find((l) => l.startsWith('a=mid:')).slice(6));
  return (
    [
      'v=0',
      `o=- 1923518516 ${version} IN IP4 0.0.0.0`,
      's=-',
      't=0 0',
      `a=group:BUNDLE ${mids.join(' ')}`,
      'a=msid-semantic: WMS *',
      ...sections.flat(),
    ].join('\r\n') + '\r\n'
  );
}

const isLoopback = (a) => a.startsWith('127.') || a === '::1' || a === 'localhost';

// The page's answer -> the Colibri2 transport and sources (what Jicofo does from Jingle).
function parseAnswer(sdp, epId) {
  const lines = sdp.split(/\r?\n/);
  const sections = [];
  let cur = null;
  for (const l of lines) {
    if (l.startsWith('m=')) sections.push((cur = [l]));
    else if (cur) cur.push(l);
  }
  const byMid = (mid) => sections.find((s) => s.includes(`a=mid:${mid}`)) || [];
  const val = (s, name) => (s.find((l) => l.startsWith(`a=${name}:`)) || '').slice(name.length + 3) || null;
  const a = byMid('0');
  const v = byMid('1');
  const fp = val(a, 'fingerprint').split(' ');
  const candidates = [];
  for (const l of a) {
    if (!l.startsWith('a=candidate:')) continue;
    const p = l.slice(12).split(' ');
    const c = {
      foundation: p[0],
      component: p[1],
      protocol: p[2].toLowerCase(),
      priority: p[3],
      ip: p[4],
      port: p[5],
      type: p[7],
      generation: '0',
      network: '0',
      id: randomBytes(8).toString('hex'),
    };
    for (let i = 8; i + 1 < p.length; i += 2) {
      if (p[i] === 'raddr') c['rel-addr'] = p[i + 1];
      if (p[i] === 'rport') c['rel-port'] = p[i + 1];
      if (p[i] === 'generation') c.generation = p[i + 1];
      if (p[i] === 'network-id') c.network = p[i + 1];
    }
    if (c.protocol !== 'udp') continue;
    clientCandidates.push(c);
    // The BWE test's node listens on a veth address only: loopback candidates are no use there.
    if (BWE ? isLoopback(c.ip) : !KEEP_ALL && !isLoopback(c.ip)) continue;
    candidates.push(c);
  }
  const ssrcsOf = (s) => [...new Set(s.map((l) => /^a=ssrc:(\d+)/.exec(l)).filter(Boolean).map((r) => Number(r[1])))];
  const groups = v
    .map((l) => /^a=ssrc-group:(\S+) (.*)$/.exec(l))
    .filter(Boolean)
    .map((r) => ({ semantics: r[1], sources: r[2].trim().split(/\s+/).map(Number) }));
  const audioSsrc = ssrcsOf(a)[0];
  const videoSsrcs = ssrcsOf(v);
  // A receive-only client (the BWE test's receivers) answers its first m-lines without SSRCs:
  // no sources to signal, nothing for the others' offers.
  const sends = audioSsrc !== undefined && videoSsrcs.length > 0;
  const sim = groups.find((g) => g.semantics === 'SIM');
  const primary = sim ? sim.sources[0] : videoSsrcs[0];
  const fidOf = (s) => groups.find((g) => g.semantics === 'FID' && g.sources[0] === s)?.sources[1] ?? null;
  return {
    transport: {
      ufrag: val(a, 'ice-ufrag'),
      pwd: val(a, 'ice-pwd'),
      'rtcp-mux': true,
      fingerprints: [{ fingerprint: fp[1], setup: val(a, 'setup'), hash: fp[0] }],
      candidates,
    },
    sources: sends
      ? [
          { type: 'audio', id: `${epId}-a0`, sources: [audioSsrc] },
          {
            type: 'video',
            id: `${epId}-v0`,
            sources: videoSsrcs,
            ...(groups.length ? { 'ssrc-groups': groups } : {}),
          },
        ]
      : [],
    // what the other participants' offers need
    remote: sends ? { id: epId, audio: audioSsrc, video: primary, rtx: fidOf(primary) } : null,
    simSsrcs: sim ? sim.sources : null,
    candidateCount: candidates.length,
  };
}

// ---- Colibri2 over HTTP (the private listener) ----
async function colibri(method, path, body) {
  const r = await fetch(`${PRIVATE}${path}`, {
    method,
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  });
  const text = await r.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: r.status, json, text };
}

// ---- pages ----
let context;
async function openPage(label, ctx = context) {
  const page = await ctx.newPage();
  page.label = label;
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') log(`[${label} console.${m.type()}] ${m.text()}`);
  });
  page.on('pageerror', (e) => log(`[${label} pageerror] ${e.message}`));
  await page.route(PAGE_URL, (route) => route.fulfill({ status: 200, contentType: 'text/html', body: PAGE_HTML }));
  await page.goto(PAGE_URL, { timeout: 10000 });
  return page;
}

const pstats = (p) => p.page.evaluate(() => window.jc.stats());
const inboundOf = (s, ssrc) => s.inbound.find((r) => r.ssrc === ssrc) || null;
const fmtIn = (r) =>
  r
    ? `${r.codec ?? '?'} ${r.frameWidth ?? '?'}x${r.frameHeight ?? '?'} frames=${r.framesDecoded} (${r.framesPerSecond ?? 0} fps, key ${r.keyFramesDecoded}, freezes ${r.freezeCount}, pli ${r.pliCount}, nack ${r.nackCount}) pkts=${r.packetsReceived} lost=${r.packetsLost}`
    : 'none';
const fmtOut = (s) =>
  s.outbound
    .filter((o) => o.kind === 'video')
    .map((o) => `${o.ssrc}:${o.codec ?? '?'} ${o.frameWidth ?? '?'}x${o.frameHeight ?? '?'}${o.scalabilityMode ? ` ${o.scalabilityMode}` : ''} ${o.bytesSent}B${o.qualityLimitationReason && o.qualityLimitationReason !== 'none' ? ` (limited: ${o.qualityLimitationReason})` : ''}`)
    .join(', ');

// The participants' view of everyone else's media, for assertions.
async function remoteView(p, others) {
  const s = await pstats(p);
  return {
    s,
    remotes: others.map((o) => ({ id: o.label, video: inboundOf(s, o.remote.video), audio: inboundOf(s, o.remote.audio) })),
  };
}
const fmtView = (v) => v.remotes.map((r) => `${r.id}: video ${fmtIn(r.video)}, audio pkts ${r.audio?.packetsReceived ?? 0}`).join(' | ');

// ---------------------------------------------------------------------------------------------
// One conference on the node, this script playing its Jicofo: join(label, opts) allocates an
// endpoint, opens a page (in opts.context, default the main browser's), negotiates it and its
// bridge channel, and re-offers everyone already there the newcomer's m-lines.
function newConference() {
  const meetingId = randomUUID();
  const name = `relais-e2e-${hex8()}@conference.relais.test`;
  const parts = []; // joined participants, in join order
  let first = true;

  async function join(label, { context: ctx = context, ...opts }) {
    const id = hex8();
    const page = await openPage(label, ctx);
    const p = { label, id, page, opts, version: 1, remote: null, transport: null, ws: null };
    const cap = await page.evaluate((o) => window.jc.init(o), { width: CAP_W, height: CAP_H, frameRate: CAP_FPS, ...opts });
    log(cap.capture
      ? `${label} (${id}): camera ${cap.capture.width}x${cap.capture.height}@${cap.capture.frameRate}, ${opts.codec ?? 'VP8'}${opts.scalabilityMode ? ` ${opts.scalabilityMode}` : ''}${opts.simulcast === false ? '' : ' simulcast'}`
      : `${label} (${id}): receive only`);
    const endpoint = {
      id,
      create: true,
      'stats-id': `${label}-e2e`,
      'muc-role': parts.length ? 'participant' : 'moderator',
      medias: MEDIAS,
      transport: { 'ice-controlling': true },
      capabilities: ['source-names'],
    };
    const alloc = first
      ? await colibri('POST', '/colibri/v2/conferences', { 'meeting-id': meetingId, name, create: true, endpoints: [endpoint] })
      : await colibri('PATCH', `/colibri/v2/conferences/${meetingId}`, { 'meeting-id': meetingId, endpoints: [endpoint] });
    const ep = alloc.json?.endpoints?.find((e) => e.id === id);
    const tr = ep?.transport?.transport;
    if (
      !check(
        `colibri2: ${first ? 'POST (create conference)' : 'PATCH'} allocates endpoint ${label} with ICE/DTLS transport and a colibri-ws URL`,
        alloc.status === 200 && !!tr?.ufrag && !!tr?.pwd && tr?.fingerprints?.length > 0 && tr?.candidates?.length > 0 && tr?.['web-sockets']?.length > 0,
        `status ${alloc.status}; ${alloc.status === 200 ? `${tr?.candidates?.length ?? 0} candidates, ice-controlling, ws ${tr?.['web-sockets']?.[0]?.replace(/pwd=.*/, 'pwd=…')}; bridge sources ${(alloc.json?.sources || []).map((s) => s.id).join(',')}` : alloc.text.slice(0, 200)}`,
      )
    ) {
      throw new Error(`allocation of ${label} failed`);
    }
    first = false;
    p.transport = tr;
    const offer = buildOffer(tr, parts.map((o) => o.remote).filter(Boolean), p.version++);
    const ans = await page.evaluate((sdp) => window.jc.applyOffer(sdp), offer);
    const parsed = parseAnswer(ans.sdp, id);
    p.answerSdp = ans.sdp;
    p.remote = parsed.remote;
    p.simSsrcs = parsed.simSsrcs;
    log(`${label}: answer has ${parsed.candidateCount} ${KEEP_ALL ? '' : 'loopback '}candidate(s)${KEEP_ALL ? ` (${parsed.transport.candidates.map((c) => c.ip).join(', ')})` : ''}, ${parsed.remote ? `audio ${parsed.remote.audio}, video ${parsed.sources[1].sources.join(' ')} groups ${JSON.stringify(parsed.sources[1]['ssrc-groups'] || [])}` : 'no sources (receive only)'}`);
    const upd = await colibri('PATCH', `/colibri/v2/conferences/${meetingId}`, {
      'meeting-id': meetingId,
      endpoints: [{ id, transport: { transport: parsed.transport }, ...(parsed.sources.length ? { sources: parsed.sources } : {}) }],
    });
    check(`colibri2: PATCH with ${label}'s transport and sources answers 200`, upd.status === 200, `status ${upd.status} ${upd.status === 200 ? '' : upd.text.slice(0, 200)}`);
    // Re-offer everyone already there with the newcomer's m-lines appended.
    for (const o of p.remote ? parts : []) {
      const sdp = buildOffer(o.transport, parts.filter((x) => x !== o).concat([p]).map((x) => x.remote).filter(Boolean), o.version++);
      const r = await o.page.evaluate((x) => window.jc.applyOffer(x), sdp);
      const again = parseAnswer(r.sdp, o.id);
      if (o.remote && (again.remote?.video !== o.remote.video || again.remote?.audio !== o.remote.audio))
        log(`note: ${o.label}'s SSRCs changed in its renegotiated answer: ${JSON.stringify(again.remote)} vs ${JSON.stringify(o.remote)}`);
    }
    parts.push(p);
    // The bridge channel.
    const url = tr['web-sockets'][0];
    const open = await page.evaluate((u) => window.jc.openBridge(u), url);
    const hello = open.ok && (await until(3000, async () => (await page.evaluate(() => window.jc.messages('ServerHello').length)) > 0, 100));
    check(`bridge channel: ${label} opens the colibri-ws WebSocket, sends ClientHello and gets ServerHello`, hello,
      `open ${JSON.stringify(open)}`);
    return p;
  }

  const others = (p) => parts.filter((x) => x !== p);
  const send = (p, msg) => p.page.evaluate((m) => window.jc.send(m), msg);
  // What jitsi-meet sends: a default for the thumbnails, and 720 for the source on stage.
  const constraints = (maxHeight, onStage = null) => ({
    colibriClass: 'ReceiverVideoConstraints',
    lastN: -1,
    defaultConstraints: { maxHeight },
    constraints: onStage ? { [onStage]: { maxHeight: 720 } } : {},
    onStageSources: onStage ? [onStage] : [],
  });
  return { meetingId, parts, join, others, send, constraints };
}

// The real test against the node.
async function runNode() {
  const { meetingId, parts, join, others, send, constraints } = newConference();

  // ---- step 1: three VP8 simulcast participants ----
  const A = await join('A', { codec: 'VP8', simulcast: true });
  const B = await join('B', { codec: 'VP8', simulcast: true });
  const C = await join('C', { codec: 'VP8', simulcast: true });
  // A watches everyone in high definition; B and C keep the thumbnail default (180), which
  // keeps the decoding load of the four browsers on a small machine low.
  await send(A, constraints(720));
  for (const p of [B, C]) await send(p, constraints(180));

  // ---- step 2: everyone decodes everyone ----
  const views = new Map();
  const base = new Map();
  let ok = await until(25000, async () => {
    let all = true;
    for (const p of [A, B, C]) {
      const v = await remoteView(p, others(p));
      views.set(p, v);
      if (!base.has(p) && v.remotes.every((r) => r.video?.framesDecoded > 0)) base.set(p, v);
      const b = base.get(p);
      all &&= !!b && v.remotes.every((r, i) => r.video?.framesDecoded > b.remotes[i].video.framesDecoded + 10 && r.audio?.packetsReceived > 50);
    }
    return all;
  }, 500);
  for (const p of [A, B, C]) log(`${p.label}: ${views.get(p)?.s.connectionState} ${fmtView(views.get(p))}`);
  check('media: A, B and C each decode video from both others (framesDecoded grows) and receive their audio within 25 s', ok,
    [A, B, C].map((p) => `${p.label} ${views.get(p)?.s.connectionState}`).join(', '));
  for (const p of [A, B, C]) {
    const s = await pstats(p);
    const layers = s.outbound.filter((o) => o.kind === 'video' && o.bytesSent > 0);
    log(`${p.label} sends: ${fmtOut(s)}`);
    // Chromium orders the layers like the SIM group: the first (primary) SSRC is the lowest.
    const hs = (p.simSsrcs || []).map((x) => layers.find((o) => o.ssrc === x)?.frameHeight ?? 0);
    check(`simulcast: ${p.label} sends 3 VP8 layers of rising height on its munged SIM SSRCs`,
      layers.length === 3 && layers.every((o) => /vp8/i.test(o.codec || '')) && hs.length === 3 && hs[0] > 0 && hs[0] < hs[1] && hs[1] < hs[2],
      `${layers.length} active video SSRCs, heights in SIM order ${hs.join('/')}`);
  }
  const fwd = await A.page.evaluate(() => window.jc.messages('ForwardedSources').map((m) => m.msg.forwardedSources));
  const lastFwd = fwd[fwd.length - 1] || [];
  check('bridge channel: A is told ForwardedSources with B-v0 and C-v0',
    [B, C].every((o) => lastFwd.includes(`${o.id}-v0`)), `last ${JSON.stringify(lastFwd)} (${fwd.length} messages)`);
  const kinds = await A.page.evaluate(() => [...new Set(window.jc.messages().map((m) => m.msg.colibriClass))]);
  log(`A's bridge-channel message classes so far: ${kinds.join(', ')}`);

  // ---- step 3: receiver constraints ----
  const heights = async (p) => {
    const v = await remoteView(p, others(p));
    return { v, h: v.remotes.map((r) => r.video?.frameHeight ?? 0) };
  };
  let hv;
  ok = await until(15000, async () => (hv = await heights(A)).h.every((h) => h > 180), 250);
  check('constraints: with maxHeight 720, A decodes both remotes above 180 within 15 s', ok, fmtView(hv.v));
  await send(A, constraints(180));
  let t = Date.now();
  ok = await until(3000, async () => (hv = await heights(A)).h.every((h) => h > 0 && h <= 180), 100);
  check('constraints: A asks maxHeight 180, both remotes decode at <= 180 within 3 s', ok, `${Date.now() - t} ms; ${fmtView(hv.v)}`);
  const senders = await Promise.all([B, C].map((p) => p.page.evaluate(() => window.jc.messages('SenderSourceConstraints').map((m) => m.msg))));
  log(`SenderSourceConstraints seen: B ${JSON.stringify(senders[0].slice(-1))}, C ${JSON.stringify(senders[1].slice(-1))}`);
  const fd = (await heights(A)).v.remotes.map((r) => r.video?.framesDecoded ?? 0);
  await sleep(1000);
  hv = await heights(A);
  check('constraints: at 180, A keeps decoding both remotes (framesDecoded grows)',
    hv.v.remotes.every((r, i) => (r.video?.framesDecoded ?? 0) > fd[i] + 5), fmtView(hv.v));
  await send(A, constraints(720));
  t = Date.now();
  ok = await until(10000, async () => (hv = await heights(A)).h.every((h) => h > 180), 100);
  check('constraints: A lifts it (maxHeight 720), both remotes rise above 180 within 10 s', ok, `${Date.now() - t} ms; ${fmtView(hv.v)}`);

  // ---- step 4: a VP9 SVC publisher ----
  await send(A, constraints(180));
  const D = await join('D', { codec: 'VP9', simulcast: false, scalabilityMode: VP9_MODE });
  await send(D, constraints(180));
  await send(B, constraints(180, `${D.id}-v0`)); // B puts D on stage
  let va, vb, sd;
  ok = await until(20000, async () => {
    [va, vb, sd] = await Promise.all([remoteView(A, [D]), remoteView(B, [D]), pstats(D)]);
    const ra = va.remotes[0].video;
    const rb = vb.remotes[0].video;
    return ra?.framesDecoded > 10 && rb?.framesDecoded > 10 && ra.frameHeight <= 180 && rb.frameHeight > 180;
  }, 250);
  const dv = sd.outbound.filter((o) => o.kind === 'video' && o.bytesSent > 0);
  log(`D sends: ${fmtOut(sd)}`);
  check(`vp9: D sends one VP9 SSRC with scalabilityMode ${VP9_MODE} (no SIM group)`,
    dv.length === 1 && /vp9/i.test(dv[0].codec || '') && dv[0].scalabilityMode === VP9_MODE && !D.simSsrcs,
    `${dv.length} active video SSRC(s): ${fmtOut(sd)}`);
  check('vp9: A (maxHeight 180) decodes D at <= 180 while B (D on stage, 720) decodes D above 180, within 20 s', ok,
    `A: ${fmtIn(va?.remotes[0].video)} | B: ${fmtIn(vb?.remotes[0].video)}`);
  const f0 = [va.remotes[0].video?.framesDecoded ?? 0, vb.remotes[0].video?.framesDecoded ?? 0];
  await sleep(1500);
  [va, vb] = await Promise.all([remoteView(A, [D]), remoteView(B, [D])]);
  check('vp9: both keep decoding D (framesDecoded grows), A still <= 180',
    (va.remotes[0].video?.framesDecoded ?? 0) > f0[0] + 5 && (vb.remotes[0].video?.framesDecoded ?? 0) > f0[1] + 5 && (va.remotes[0].video?.frameHeight ?? 999) <= 180,
    `A: ${fmtIn(va.remotes[0].video)} | B: ${fmtIn(vb.remotes[0].video)}`);
  // D's offer listed everyone already there; the others were re-offered D's m-lines.
  let vd;
  let heard;
  ok = await until(10000, async () => {
    vd = await remoteView(D, others(D));
    heard = await Promise.all([A, B, C].map((p) => remoteView(p, [D])));
    return vd.remotes.every((r) => r.video?.framesDecoded > 10 && r.audio?.packetsReceived > 20) &&
      heard.every((h) => h.remotes[0].audio?.packetsReceived > 20);
  }, 250);
  log(`D receives: ${fmtView(vd)}`);
  check('vp9: D (joined last) decodes A, B and C and receives their audio; A, B and C receive D\'s audio', ok,
    `D: ${vd.remotes.map((r) => `${r.id} frames ${r.video?.framesDecoded ?? 0} audio ${r.audio?.packetsReceived ?? 0}`).join(', ')}; D's audio at ${heard.map((h, i) => `${'ABC'[i]} ${h.remotes[0].audio?.packetsReceived ?? 0}`).join(', ')}`);

  const exp = await colibri('POST', '/colibri/v2/conferences', { 'meeting-id': meetingId, expire: true }).catch((e) => ({ status: String(e) }));
  log(`expire conference -> ${exp.status}`);
  for (const p of parts) await p.page.evaluate(() => window.jc.close()).catch(() => {});
}

// ---------------------------------------------------------------------------------------------
// The bandwidth-estimation test (E2E_COLIBRI_BWE=1; scripts/bwe-netns runs the node, this script
// and the main browser in one network namespace, and E2E_CAPPED_CHROMIUM starts Chromium in a
// second one whose only link, a veth pair, is rate-capped in the node → receiver direction).
const METRICS = [
  'relais_bytes_sent_total',
  'relais_rtp_forwarded_total',
  'relais_thinned_packets_total',
  'relais_probe_packets_total',
  'relais_retransmissions_total',
  'relais_keyframe_requests_total',
  'relais_nacked_packets_total',
  'relais_plis_received_total',
  'relais_packets_lost_total',
];
async function scrapeMetrics() {
  try {
    const r = await fetch(`${PRIVATE}/metrics`, { signal: AbortSignal.timeout(3000) });
    const text = await r.text();
    const out = {};
    for (const name of METRICS) {
      const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
      if (m) out[name] = Number(m[1]);
    }
    return out;
  } catch {
    return {};
  }
}

// Samples [{ t, h, fd, fc, tfd, bytes }] -> what the checks and the report need.
function summarise(samples) {
  const heights = {};
  let maxGap = 0;
  let lastProgress = samples[0]?.t ?? 0;
  for (let i = 0; i < samples.length; i++) {
    const x = samples[i];
    heights[x.h] = (heights[x.h] || 0) + 1;
    if (i > 0 && x.fd > samples[i - 1].fd) lastProgress = x.t;
    maxGap = Math.max(maxGap, x.t - lastProgress);
  }
  const a = samples[0];
  const b = samples[samples.length - 1];
  const secs = Math.max(0.001, (b.t - a.t) / 1000);
  return {
    heights,
    minH: Math.min(...samples.map((x) => x.h)),
    maxH: Math.max(...samples.map((x) => x.h)),
    maxGap,
    frames: b.fd - a.fd,
    fps: (b.fd - a.fd) / secs,
    kbps: ((b.bytes - a.bytes) * 8) / secs / 1000,
    freezes: b.fc - a.fc,
    freezeSecs: b.tfd - a.tfd,
    lost: b.lost - a.lost,
  };
}
// Per second of the window: the height decoded last and the kbit/s received in that second.
function timeline(samples) {
  const t0 = samples[0].t;
  const secs = [];
  for (const x of samples) secs[Math.floor((x.t - t0) / 1000)] = x;
  let prev = samples[0];
  const out = [];
  for (const x of secs.filter(Boolean)) {
    out.push(`${x.h}p/${Math.round(((x.bytes - prev.bytes) * 8) / Math.max(0.001, (x.t - prev.t) / 1000) / 1000)}k`);
    prev = x;
  }
  return out.join(' ');
}
const fmtSummary = (x) =>
  `frameHeight ${Object.entries(x.heights).map(([h, n]) => `${h}:${n}`).join(' ')} (samples), ${x.frames} frames (${x.fps.toFixed(1)} fps), longest stall ${x.maxGap} ms, freezeCount +${x.freezes} (${x.freezeSecs.toFixed(2)} s), ${x.kbps.toFixed(0)} kbit/s, lost +${x.lost}`;

async function runBwe() {
  const cap = process.env.E2E_BWE_CAP_KBPS ? `${process.env.E2E_BWE_CAP_KBPS} kbit/s` : 'capped';
  const { meetingId, parts, join, send, constraints } = newConference();
  const P = await join('P', { codec: 'VP8', simulcast: true });
  const U = await join('U', { recvOnly: true });
  const R = await join('R', { recvOnly: true, context: cappedContext });
  const rx = [U, R];
  // Both put P on stage (720), thumbnails at the default 180 (there are none).
  for (const p of rx) await send(p, constraints(180, `${P.id}-v0`));
  const tcc = (sdp) => sdp.includes(TCC_URI) && /a=rtcp-fb:\d+ transport-cc/.test(sdp);
  check('bwe: P, U and R answer with the transport-cc header extension and feedback',
    [P, U, R].every((p) => tcc(p.answerSdp)), [P, U, R].map((p) => `${p.label} ${tcc(p.answerSdp)}`).join(', '));

  const video = async (p) => {
    const s = await pstats(p);
    return { s, v: inboundOf(s, P.remote.video) };
  };
  let cur;
  let ok = await until(20000, async () => {
    cur = await Promise.all(rx.map(video));
    return cur.every((c) => c.v?.framesDecoded > 10);
  }, 250);
  check(`bwe: U (uncapped) and R (link ${cap}) decode P's video within 20 s`, ok,
    rx.map((p, i) => `${p.label}: ${cur[i].s.connectionState} ${fmtIn(cur[i].v)}`).join(' | '));
  if (!ok) return;
  // The test means something once P's top layer costs more than the capped link carries: P's
  // own (send-side) estimate ramps up first, from the node's TWCC feedback to senders.
  const topKbps = Number(process.env.E2E_BWE_TOP_MIN_KBPS || 1200);
  const t1 = Date.now();
  let sp = await pstats(P);
  let hs;
  let topRate = 0;
  const ramp = [];
  await sleep(1000);
  ok = await until(34000, async () => {
    const s = await pstats(P);
    const secs = Math.max(0.001, (s.now - sp.now) / 1000);
    const rate = (x) => ((((s.outbound.find((o) => o.ssrc === x)?.bytesSent ?? 0) - (sp.outbound.find((o) => o.ssrc === x)?.bytesSent ?? 0)) * 8) / secs / 1000);
    hs = (P.simSsrcs || []).map((x) => s.outbound.find((o) => o.ssrc === x && o.bytesSent > 0)?.frameHeight ?? 0);
    topRate = P.simSsrcs ? rate(P.simSsrcs[2]) : 0;
    ramp.push(`${hs[2] || 0}p/${topRate.toFixed(0)}k (est ${Math.round((s.availableOutgoingBitrate ?? 0) / 1000)}k)`);
    sp = s;
    return hs.length === 3 && hs[0] > 0 && hs[0] < hs[1] && hs[1] < hs[2] && hs[2] > 360 && topRate >= topKbps;
  }, 1000);
  log(`P sends: ${fmtOut(sp)}; its top layer per second: ${ramp.join(' ')}`);
  check(`bwe: P sends 3 VP8 simulcast layers, the top one above 360 at >= ${topKbps} kbit/s, within 35 s`, ok,
    `${((Date.now() - t1) / 1000).toFixed(0)} s; heights in SIM order ${hs.join('/')}, top ${topRate.toFixed(0)} kbit/s, P's send-side estimate ${Math.round((sp.availableOutgoingBitrate ?? 0) / 1000)} kbit/s`);
  log(`settling ${SETTLE_S} s`);
  await sleep(SETTLE_S * 1000);
  sp = await pstats(P);

  const m0 = await scrapeMetrics();
  const samples = rx.map(() => []);
  log(`measuring ${MEASURE_S} s`);
  const end = Date.now() + MEASURE_S * 1000;
  const nodeSeconds = [m0]; // the node's counters once a second, for a timeline
  let nextScrape = Date.now() + 1000;
  while (Date.now() < end) {
    if (Date.now() >= nextScrape) {
      nextScrape += 1000;
      nodeSeconds.push(await scrapeMetrics());
    }
    const r = await Promise.all(rx.map(video));
    const t = Date.now();
    r.forEach((c, i) =>
      samples[i].push({
        t,
        h: c.v?.frameHeight ?? 0,
        fd: c.v?.framesDecoded ?? 0,
        fc: c.v?.freezeCount ?? 0,
        tfd: c.v?.totalFreezesDuration ?? 0,
        bytes: c.v?.bytesReceived ?? 0,
        lost: c.v?.packetsLost ?? 0,
        pageNow: c.s.now,
      }),
    );
    await sleep(200);
  }
  const m1 = await scrapeMetrics();
  nodeSeconds.push(m1);
  const perSecond = (name) => nodeSeconds.slice(1).map((m, i) => (m[name] ?? 0) - (nodeSeconds[i][name] ?? 0)).join(' ');
  const sp1 = await pstats(P);
  const secs = Math.max(0.001, (sp1.now - sp.now) / 1000);
  log(`P's send-side estimate: ${Math.round((sp.availableOutgoingBitrate ?? 0) / 1000)} -> ${Math.round((sp1.availableOutgoingBitrate ?? 0) / 1000)} kbit/s`);
  const sent = (P.simSsrcs || []).map((x) => {
    const [a, b] = [sp, sp1].map((s) => s.outbound.find((o) => o.ssrc === x) || {});
    return `${b.frameHeight ?? '?'}p ${(((b.bytesSent ?? 0) - (a.bytesSent ?? 0)) * 8 / secs / 1000).toFixed(0)} kbit/s ${(((b.framesEncoded ?? 0) - (a.framesEncoded ?? 0)) / secs).toFixed(1)} fps${b.qualityLimitationReason && b.qualityLimitationReason !== 'none' ? ` (limited: ${b.qualityLimitationReason})` : ''}`;
  });
  const [su, sr] = samples.map(summarise);
  const stats = await Promise.all(rx.map((p) => p.page.evaluate(() => window.jc.messages('ConnectionStats'))));
  const estimates = stats.map((list) => list.map((m) => m.msg.estimatedDownlinkBandwidth));
  // When each estimate came, in s from the start of the window (negative: while settling).
  const when = stats.map((list, i) => {
    const x = samples[i][0];
    return list.map((m) => ((m.t - x.pageNow) / 1000).toFixed(0));
  });
  const fmtEst = (e, i) => (e.length ? e.map((b, j) => `${Math.round(b / 1000)}@${when[i]?.[j] ?? '?'}s`).join(' ') + ' (kbit/s @ s into the window)' : 'none');
  log(`U (uncapped): ${fmtSummary(su)}; ConnectionStats estimates ${fmtEst(estimates[0], 0)}`);
  log(`R (${cap}): ${fmtSummary(sr)}; ConnectionStats estimates ${fmtEst(estimates[1], 1)}`);
  log(`U per second: ${timeline(samples[0])}`);
  log(`R per second: ${timeline(samples[1])}`);
  log(`node per second: probe packets ${perSecond('relais_probe_packets_total')}; keyframe requests ${perSecond('relais_keyframe_requests_total')}`);
  log(`P sent over the window: ${sent.join(', ')}`);
  log(`node counters over the window: ${METRICS.filter((n) => n in m1).map((n) => `${n.replace(/^relais_|_total$/g, '')} +${m1[n] - (m0[n] ?? 0)}`).join(', ')}`);
  const fwd = await R.page.evaluate(() => window.jc.messages('ForwardedSources').map((m) => m.msg.forwardedSources));
  log(`R's last ForwardedSources: ${JSON.stringify(fwd[fwd.length - 1] ?? null)} (${fwd.length} messages)`);

  check('bwe: the node tells U and R a downlink estimate (ConnectionStats, transport-cc feedback in use)',
    estimates.every((e) => e.length > 0), `U ${fmtEst(estimates[0], 0)}; R ${fmtEst(estimates[1], 1)}`);
  check(`bwe: R (link ${cap}) decodes P at <= 360 throughout the ${MEASURE_S} s`, sr.minH > 0 && sr.maxH <= 360, fmtSummary(sr));
  check('bwe: R decodes without a freeze of 1 s or more', sr.frames > 0 && sr.maxGap < 1000, `longest stall ${sr.maxGap} ms, freezeCount +${sr.freezes}`);
  check(`bwe: U (uncapped) decodes P above 360 throughout the ${MEASURE_S} s`, su.minH > 360, fmtSummary(su));
  check('bwe: U decodes without a freeze of 1 s or more', su.frames > 0 && su.maxGap < 1000, `longest stall ${su.maxGap} ms, freezeCount +${su.freezes}`);
  console.log(`bwe-figures: ${JSON.stringify({ U: { ...su, estimates: estimates[0] }, R: { ...sr, estimates: estimates[1] }, P: sent })}`);

  const exp = await colibri('POST', '/colibri/v2/conferences', { 'meeting-id': meetingId, expire: true }).catch((e) => ({ status: String(e) }));
  log(`expire conference -> ${exp.status}`);
  for (const p of parts) await p.page.evaluate(() => window.jc.close()).catch(() => {});
}

// ---------------------------------------------------------------------------------------------
// Self-test without a node: a "fake bridge" page offers through plain RTCPeerConnections (one
// per client, ICE-controlling as the offerer, DTLS actpass); the harness turns its offer into a
// Jicofo-style offer (same ICE/DTLS credentials and candidates, the fake remote participants'
// SSRCs) for the client, and gives the client's answer back to the fake bridge.
function fakeBridgeInit() {
  const pcs = {};
  let media = null;
  window.fb = {
    async create(key) {
      media ||= await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 640, height: 360, frameRate: 15 } });
      const pc = new RTCPeerConnection({ iceServers: [], bundlePolicy: 'max-bundle', rtcpMuxPolicy: 'require' });
      pc.addTransceiver('audio', { direction: 'sendrecv' });
      pc.addTransceiver('video', { direction: 'sendrecv' });
      pcs[key] = pc;
    },
    addRemote(key) {
      const s = new MediaStream();
      pcs[key].addTransceiver(media.getAudioTracks()[0].clone(), { direction: 'sendonly', streams: [s] });
      pcs[key].addTransceiver(media.getVideoTracks()[0].clone(), { direction: 'sendonly', streams: [s] });
    },
    async offer(key) {
      const pc = pcs[key];
      await pc.setLocalDescription(await pc.createOffer());
      if (pc.iceGatheringState !== 'complete')
        await new Promise((r) => {
          const t = setTimeout(r, 3000);
          pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && (clearTimeout(t), r()));
        });
      return pc.localDescription.sdp;
    },
    async answer(key, sdp) {
      // The fake bridge's own offer numbered the header extensions its way: drop them.
      sdp = sdp.split('\r\n').filter((l) => !l.startsWith('a=extmap:')).join('\r\n');
      await pcs[key].setRemoteDescription({ type: 'answer', sdp });
    },
    async stats(key) {
      const out = { state: pcs[key].connectionState, inbound: [] };
      (await pcs[key].getStats()).forEach((r) => {
        if (r.type === 'inbound-rtp') out.inbound.push({ kind: r.kind, ssrc: r.ssrc, packetsReceived: r.packetsReceived, framesDecoded: r.framesDecoded });
      });
      return out;
    },
  };
}

// The fake bridge's offer -> the transport and remote participants the harness's offer needs.
function fromFakeOffer(sdp) {
  const sections = [];
  let cur = null;
  for (const l of sdp.split(/\r?\n/)) {
    if (l.startsWith('m=')) sections.push((cur = [l]));
    else if (cur) cur.push(l);
  }
  const val = (s, n) => (s.find((l) => l.startsWith(`a=${n}:`)) || '').slice(n.length + 3);
  const a = sections[0];
  const fp = val(a, 'fingerprint').split(' ');
  const candidates = a
    .filter((l) => l.startsWith('a=candidate:'))
    .map((l) => l.slice(12).split(' '))
    .filter((p) => p[2].toLowerCase() === 'udp' && (KEEP_ALL || isLoopback(p[4])))
    .map((p) => ({ foundation: p[0], component: p[1], protocol: 'udp', priority: p[3], ip: p[4], port: p[5], type: p[7], generation: '0' }));
  const transport = { ufrag: val(a, 'ice-ufrag'), pwd: val(a, 'ice-pwd'), fingerprints: [{ hash: fp[0], fingerprint: fp[1] }], candidates };
  const others = [];
  for (let i = 2; i + 1 < sections.length; i += 2) {
    const au = Number(/^a=ssrc:(\d+)/.exec(sections[i].find((l) => l.startsWith('a=ssrc:')))[1]);
    const fid = sections[i + 1].map((l) => /^a=ssrc-group:FID (\d+) (\d+)/.exec(l)).find(Boolean);
    others.push({ id: `fake${i / 2}`, audio: au, video: Number(fid[1]), rtx: Number(fid[2]) });
  }
  return { transport, others };
}

async function runSelftest() {
  const bridge = await openPage('fake-bridge');
  await bridge.addScriptTag({ content: `(${fakeBridgeInit.toString()})();` });
  const clients = [];
  for (const [label, opts] of [
    ['X', { codec: 'VP8', simulcast: true }],
    ['Y', { codec: 'VP9', simulcast: false, scalabilityMode: 'L3T3_KEY' }],
  ]) {
    const page = await openPage(label);
    const cap = await page.evaluate((o) => window.jc.init(o), { width: CAP_W, height: CAP_H, frameRate: CAP_FPS, ...opts });
    log(`${label}: camera ${cap.capture.width}x${cap.capture.height}@${cap.capture.frameRate}`);
    await bridge.evaluate((k) => window.fb.create(k), label);
    await bridge.evaluate((k) => window.fb.addRemote(k), label);
    const fo = fromFakeOffer(await bridge.evaluate((k) => window.fb.offer(k), label));
    const offer = buildOffer(fo.transport, fo.others, 1);
    const ans = await page.evaluate((sdp) => window.jc.applyOffer(sdp), offer).catch((e) => ({ error: e.message }));
    if (!check(`selftest: Chromium accepts the Jicofo-style offer and ${label}'s munged answer`, !ans.error, ans.error || '')) {
      log(offer);
      continue;
    }
    const parsed = parseAnswer(ans.sdp, label);
    log(`${label}: answer video ${JSON.stringify(parsed.sources[1])}, ${parsed.candidateCount} candidates`);
    const r = await bridge.evaluate(([k, s]) => window.fb.answer(k, s).then(() => null, (e) => e.message), [label, ans.sdp]);
    check(`selftest: the fake bridge accepts ${label}'s answer`, r === null, r || '');
    clients.push({ label, page, opts, parsed, others: fo.others, version: 2 });
  }
  const X = clients.find((c) => c.label === 'X');
  const Y = clients.find((c) => c.label === 'Y');
  if (X) {
    let s;
    let ok = await until(20000, async () => {
      s = await X.page.evaluate(() => window.jc.stats());
      const v = inboundOf(s, X.others[0].video);
      return v?.framesDecoded > 10 && s.outbound.filter((o) => o.kind === 'video' && o.bytesSent > 0).length === 3;
    });
    log(`X: ${s.connectionState}; receives ${fmtIn(inboundOf(s, X.others[0].video))}; sends ${fmtOut(s)}`);
    check('selftest: X decodes the remote video demultiplexed by its a=ssrc lines', (inboundOf(s, X.others[0].video)?.framesDecoded ?? 0) > 10, fmtIn(inboundOf(s, X.others[0].video)));
    // The top layer may need the bandwidth estimate to ramp up.
    ok = await until(15000, async () => {
      s = await X.page.evaluate(() => window.jc.stats());
      const v = s.outbound.filter((o) => o.kind === 'video' && o.bytesSent > 0);
      return v.length === 3 && v.every((o) => o.frameHeight > 0) && Math.max(...v.map((o) => o.frameHeight)) >= CAP_H;
    });
    log(`X sends: ${fmtOut(s)}`);
    check('selftest: munged SIM answer makes Chromium send 3 layers on the SIM SSRCs, top layer at capture height', ok &&
      X.parsed.simSsrcs.every((x) => s.outbound.some((o) => o.ssrc === x && o.bytesSent > 0)), fmtOut(s));
    // Renegotiation: a second remote participant.
    await bridge.evaluate((k) => window.fb.addRemote(k), 'X');
    const fo = fromFakeOffer(await bridge.evaluate((k) => window.fb.offer(k), 'X'));
    const ans = await X.page.evaluate((sdp) => window.jc.applyOffer(sdp), buildOffer(fo.transport, fo.others, X.version++)).catch((e) => ({ error: e.message }));
    const again = ans.error ? null : parseAnswer(ans.sdp, 'X');
    check('selftest: renegotiated answer keeps the SIM/FID SSRCs', !!again && JSON.stringify(again.sources[1]) === JSON.stringify(X.parsed.sources[1]),
      ans.error || JSON.stringify(again?.sources[1]));
    if (again) {
      const r = await bridge.evaluate(([k, sdp]) => window.fb.answer(k, sdp).then(() => null, (e) => e.message), ['X', ans.sdp]);
      ok = await until(10000, async () => {
        s = await X.page.evaluate(() => window.jc.stats());
        return fo.others.every((o) => inboundOf(s, o.video)?.framesDecoded > 10 && inboundOf(s, o.audio)?.packetsReceived > 10);
      });
      check('selftest: after renegotiation X decodes both remotes (video and audio)', ok && r === null,
        `${r || ''} ${fo.others.map((o) => `${o.id}: ${fmtIn(inboundOf(s, o.video))}`).join(' | ')}`);
      s = await X.page.evaluate(() => window.jc.stats());
      check('selftest: still 3 video layers after renegotiation', s.outbound.filter((o) => o.kind === 'video' && o.bytesSent > 0).length === 3, fmtOut(s));
    }
  }
  if (Y) {
    let s;
    const ok = await until(20000, async () => {
      s = await Y.page.evaluate(() => window.jc.stats());
      const v = s.outbound.filter((o) => o.kind === 'video' && o.bytesSent > 0);
      return v.length === 1 && /vp9/i.test(v[0].codec || '') && v[0].scalabilityMode === 'L3T3_KEY' && v[0].frameHeight >= CAP_H;
    });
    log(`Y sends: ${fmtOut(s)}`);
    check('selftest: Y sends one VP9 SSRC with scalabilityMode L3T3_KEY at capture height (codec order munged, setParameters)', ok, fmtOut(s));
    const fs = await bridge.evaluate((k) => window.fb.stats(k), 'Y');
    log(`fake bridge receives from Y: ${JSON.stringify(fs.inbound.filter((r) => r.kind === 'video'))}`);
  }
}

try {
  log(`launching ${EXE}; ${SELFTEST ? 'self-test (no node)' : `Colibri2 at ${PRIVATE}, pages on ${PUBLIC}`}`);
  browser = await chromium.launch({
    executablePath: EXE,
    headless: false,
    args: FAKE_VIDEO ? [...ARGS, `--use-file-for-fake-video-capture=${FAKE_VIDEO}`] : ARGS,
    timeout: 30000,
  });
  context = await browser.newContext({ permissions: ['camera', 'microphone'] });
  log(`browser ${browser.version()} up`);
  if (BWE && !SELFTEST) {
    if (!CAPPED_EXE) throw new Error('E2E_COLIBRI_BWE=1 needs E2E_CAPPED_CHROMIUM (see scripts/bwe-netns)');
    cappedBrowser = await chromium.launch({ executablePath: CAPPED_EXE, headless: false, args: ARGS, timeout: 30000 });
    cappedContext = await cappedBrowser.newContext({ permissions: ['camera', 'microphone'] });
    log(`capped browser (${CAPPED_EXE}) ${cappedBrowser.version()} up`);
  }
  await (SELFTEST ? runSelftest() : BWE ? runBwe() : runNode());
} catch (e) {
  check('colibri: ran without error', false, e.message.split('\n')[0]);
}
await finish(0);
