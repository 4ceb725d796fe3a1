// The page side of the Jitsi-path browser test (e2e/colibri.mjs): a minimal lib-jitsi-meet-like
// client. It is injected into a blank page served (by Playwright's request interception) on the
// node's public origin, like page.js. Plain RTCPeerConnection + WebSocket; exposes window.jc.
//
// The harness (playing Jicofo) hands it SDP offers built from the node's Colibri2 answer; the
// client answers the way lib-jitsi-meet does in a bridge (JVB) session:
//   - the first audio and the first video m-line carry its own camera and microphone (sendrecv);
//     every other m-line receives one remote participant's source, demultiplexed by the a=ssrc
//     lines of the offer (no mid/rid header extensions);
//   - the preferred video codec is moved to the front of the offer's first video m-line before
//     it is applied (lib-jitsi-meet's codec-order munging);
//   - VP8 simulcast: the answer is munged to carry 3 video SSRCs in an a=ssrc-group:SIM and one
//     RTX SSRC per layer in a=ssrc-group:FID (the SSRCs are chosen once and kept across
//     renegotiations);
//   - VP9 SVC: one SSRC (+ RTX), and the sender's encoding gets a scalabilityMode through
//     setParameters once the codec is negotiated;
//   - the bridge channel is a WebSocket at the Colibri2 answer's web-sockets[0] URL: ClientHello,
//     then JSON messages with a colibriClass, all kept for the harness.
(() => {
  const st = {
    pc: null,
    media: null,
    opts: {},
    sim: null, // { video: [s1, s2, s3], rtx: [r1, r2, r3] } once munged
    negotiations: 0,
    gathered: false,
    ws: null,
    wsState: 'none',
    wsError: null,
    received: [], // bridge-channel messages from the node: { t, msg }
    sent: [],
    tracks: [], // remote tracks: { id, kind, mid, streamIds }
    errors: [],
  };

  const rnd32 = () => {
    const a = new Uint32Array(1);
    crypto.getRandomValues(a);
    return (a[0] % 0xfffffff0) + 1;
  };

  // ---- SDP helpers ----
  function split(sdp) {
    const lines = sdp.split(/\r?\n/).filter((l) => l.length);
    const session = [];
    const media = [];
    for (const l of lines) {
      if (l.startsWith('m=')) media.push([l]);
      else if (media.length) media[media.length - 1].push(l);
      else session.push(l);
    }
    return { session, media };
  }
  const join = ({ session, media }) => [...session, ...media.flat()].join('\r\n') + '\r\n';
  const attr = (m, name) => {
    const l = m.find((x) => x.startsWith(`a=${name}:`));
    return l ? l.slice(name.length + 3) : null;
  };

  // Moves the payload types of `codec` (and their RTX) to the front of the first video m-line.
  function preferCodec(sdp, codec) {
    const s = split(sdp);
    const m = s.media.find((x) => x[0].startsWith('m=video'));
    if (!m) return sdp;
    const parts = m[0].split(' ');
    const pts = parts.slice(3);
    const name = new Map();
    const apt = new Map();
    for (const l of m) {
      let r = /^a=rtpmap:(\d+) ([^/]+)/.exec(l);
      if (r) name.set(r[1], r[2].toUpperCase());
      r = /^a=fmtp:(\d+) .*apt=(\d+)/.exec(l);
      if (r) apt.set(r[1], r[2]);
    }
    const main = pts.filter((p) => name.get(p) === codec.toUpperCase());
    const rtx = pts.filter((p) => main.includes(apt.get(p)));
    const first = [...main, ...rtx];
    m[0] = [...parts.slice(0, 3), ...first, ...pts.filter((p) => !first.includes(p))].join(' ');
    return join(s);
  }

  // lib-jitsi-meet's simulcast munging of the local description: 3 video SSRCs in a SIM group,
  // an RTX SSRC per layer in FID groups, all with the msid/cname of the track.
  function mungeSimulcast(sdp) {
    const s = split(sdp);
    const m = s.media.find((x) => x[0].startsWith('m=video'));
    if (!m) return sdp;
    const ssrcLines = m.filter((l) => l.startsWith('a=ssrc:'));
    if (!ssrcLines.length) return sdp; // not sending (yet)
    const primary = Number(/^a=ssrc:(\d+)/.exec(ssrcLines[0])[1]);
    const cname = (ssrcLines.map((l) => / cname:(.*)$/.exec(l)).find(Boolean) || [])[1] || 'relais-e2e';
    const msid = (ssrcLines.map((l) => / msid:(.*)$/.exec(l)).find(Boolean) || [])[1] || null;
    const fid = m.map((l) => /^a=ssrc-group:FID (\d+) (\d+)/.exec(l)).find(Boolean);
    const hasRtx = m.some((l) => /^a=rtpmap:\d+ rtx\//.test(l));
    if (!st.sim) {
      st.sim = {
        video: [primary, rnd32(), rnd32()],
        rtx: hasRtx ? [fid ? Number(fid[2]) : rnd32(), rnd32(), rnd32()] : [],
      };
    }
    const out = m.filter((l) => !l.startsWith('a=ssrc:') && !l.startsWith('a=ssrc-group:'));
    const add = [`a=ssrc-group:SIM ${st.sim.video.join(' ')}`];
    st.sim.rtx.forEach((r, i) => add.push(`a=ssrc-group:FID ${st.sim.video[i]} ${r}`));
    for (const x of [...st.sim.video, ...st.sim.rtx]) {
      add.push(`a=ssrc:${x} cname:${cname}`);
      if (msid) add.push(`a=ssrc:${x} msid:${msid}`);
    }
    m.splice(0, m.length, ...out, ...add);
    return join(s);
  }

  function waitGathering(pc, ms) {
    if (pc.iceGatheringState === 'complete') return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), ms);
      pc.addEventListener('icegatheringstatechange', () => {
        if (pc.iceGatheringState === 'complete') {
          clearTimeout(t);
          resolve(true);
        }
      });
    });
  }

  // opts: { width, height, frameRate, codec: 'VP8' | 'VP9', simulcast: bool, scalabilityMode,
  //         recvOnly: bool (no camera or microphone: the first m-lines are answered recvonly) }
  async function init(opts = {}) {
    st.opts = { codec: 'VP8', simulcast: true, width: 1280, height: 720, frameRate: 30, ...opts };
    if (st.opts.recvOnly) st.opts.simulcast = false;
    st.media = st.opts.recvOnly
      ? new MediaStream()
      : await navigator.mediaDevices.getUserMedia({
          audio: true,
          video: { width: st.opts.width, height: st.opts.height, frameRate: st.opts.frameRate },
        });
    const v = st.opts.recvOnly ? null : st.media.getVideoTracks()[0].getSettings();
    const pc = new RTCPeerConnection({ iceServers: [], bundlePolicy: 'max-bundle', rtcpMuxPolicy: 'require' });
    st.pc = pc;
    pc.addEventListener('track', (ev) => {
      st.tracks.push({ id: ev.track.id, kind: ev.track.kind, mid: ev.transceiver.mid, streams: ev.streams.map((x) => x.id) });
      const el = document.createElement(ev.track.kind === 'video' ? 'video' : 'audio');
      el.autoplay = true;
      el.muted = true;
      el.playsInline = true;
      el.srcObject = new MediaStream([ev.track]);
      document.body.appendChild(el);
      el.play().catch(() => {});
    });
    return { capture: v ? { width: v.width, height: v.height, frameRate: v.frameRate } : null };
  }

  // Applies an offer from the harness and returns the (munged) local answer. The first call
  // attaches the camera and microphone to the first audio and video transceivers.
  async function applyOffer(offerSdp) {
    const pc = st.pc;
    const offer = preferCodec(offerSdp, st.opts.codec);
    await pc.setRemoteDescription({ type: 'offer', sdp: offer });
    const first = (kind) => pc.getTransceivers().find((t) => t.receiver.track.kind === kind);
    if (st.negotiations === 0 && st.opts.recvOnly) {
      for (const kind of ['audio', 'video']) first(kind).direction = 'recvonly';
    } else if (st.negotiations === 0) {
      for (const track of st.media.getTracks()) {
        const t = first(track.kind);
        t.direction = 'sendrecv';
        await t.sender.replaceTrack(track);
        t.sender.setStreams(st.media);
      }
    }
    const answer = await pc.createAnswer();
    let sdp = answer.sdp;
    if (st.opts.simulcast) sdp = mungeSimulcast(sdp);
    await pc.setLocalDescription({ type: 'answer', sdp });
    st.negotiations += 1;
    if (!st.gathered) st.gathered = await waitGathering(pc, 5000);
    if (st.opts.scalabilityMode) {
      const sender = first('video').sender;
      const p = sender.getParameters();
      if (p.encodings?.length && p.encodings[0].scalabilityMode !== st.opts.scalabilityMode) {
        p.encodings[0].scalabilityMode = st.opts.scalabilityMode;
        await sender.setParameters(p);
      }
    }
    return { sdp: pc.localDescription.sdp, gathered: st.gathered, simulcast: st.sim };
  }

  // ---- bridge channel ----
  function openBridge(url) {
    return new Promise((resolve) => {
      const ws = new WebSocket(url);
      st.ws = ws;
      st.wsState = 'connecting';
      const t = setTimeout(() => resolve({ ok: false, state: st.wsState, error: 'open timeout' }), 5000);
      ws.addEventListener('open', () => {
        st.wsState = 'open';
        send({ colibriClass: 'ClientHello' });
        clearTimeout(t);
        resolve({ ok: true, state: 'open' });
      });
      ws.addEventListener('message', (ev) => {
        let msg;
        try {
          msg = JSON.parse(ev.data);
        } catch (e) {
          msg = { unparsable: String(ev.data).slice(0, 200) };
        }
        st.received.push({ t: Math.round(performance.now()), msg });
      });
      ws.addEventListener('error', () => {
        st.wsError = 'error event';
      });
      ws.addEventListener('close', (ev) => {
        st.wsState = `closed ${ev.code}`;
        clearTimeout(t);
        resolve({ ok: false, state: st.wsState, error: st.wsError });
      });
    });
  }

  function send(msg) {
    if (!st.ws || st.ws.readyState !== WebSocket.OPEN) return false;
    st.ws.send(JSON.stringify(msg));
    st.sent.push({ t: Math.round(performance.now()), msg });
    return true;
  }

  // Bridge-channel messages from the node, optionally only those of one colibriClass.
  const messages = (cls) => st.received.filter((r) => !cls || r.msg.colibriClass === cls);

  // ---- stats ----
  async function stats() {
    const pc = st.pc;
    const rep = await pc.getStats();
    const byId = new Map();
    rep.forEach((r) => byId.set(r.id, r));
    const codec = (r) => (r.codecId && byId.get(r.codecId)?.mimeType) || null;
    const out = {
      connectionState: pc.connectionState,
      iceConnectionState: pc.iceConnectionState,
      signalingState: pc.signalingState,
      negotiations: st.negotiations,
      wsState: st.wsState,
      inbound: [],
      outbound: [],
      now: Math.round(performance.now()),
      // The send-side bandwidth estimate of the selected candidate pair, bit/s.
      availableOutgoingBitrate: null,
    };
    rep.forEach((r) => {
      if (r.type === 'transport' && r.selectedCandidatePairId)
        out.availableOutgoingBitrate = byId.get(r.selectedCandidatePairId)?.availableOutgoingBitrate ?? null;
      if (r.type === 'inbound-rtp') {
        out.inbound.push({
          kind: r.kind,
          ssrc: r.ssrc,
          mid: r.mid,
          codec: codec(r),
          packetsReceived: r.packetsReceived || 0,
          packetsLost: r.packetsLost || 0,
          framesDecoded: r.framesDecoded || 0,
          frameWidth: r.frameWidth,
          frameHeight: r.frameHeight,
          keyFramesDecoded: r.keyFramesDecoded || 0,
          framesPerSecond: r.framesPerSecond,
          freezeCount: r.freezeCount || 0,
          totalFreezesDuration: r.totalFreezesDuration || 0,
          pliCount: r.pliCount || 0,
          nackCount: r.nackCount || 0,
          bytesReceived: r.bytesReceived || 0,
        });
      } else if (r.type === 'outbound-rtp') {
        out.outbound.push({
          kind: r.kind,
          ssrc: r.ssrc,
          rid: r.rid,
          mid: r.mid,
          codec: codec(r),
          bytesSent: r.bytesSent || 0,
          packetsSent: r.packetsSent || 0,
          framesEncoded: r.framesEncoded || 0,
          frameWidth: r.frameWidth,
          frameHeight: r.frameHeight,
          scalabilityMode: r.scalabilityMode,
          qualityLimitationReason: r.qualityLimitationReason,
          active: r.active,
        });
      }
    });
    return out;
  }

  function close() {
    try {
      if (st.ws) st.ws.close();
    } catch (e) {
      /* closing anyway */
    }
    if (st.pc) st.pc.close();
  }

  window.jc = {
    init,
    applyOffer,
    openBridge,
    send,
    messages,
    stats,
    close,
    state: () => ({ tracks: st.tracks, sim: st.sim, negotiations: st.negotiations, wsState: st.wsState, sent: st.sent.length }),
    // exported for the harness's self-test
    sdp: { preferCodec, mungeSimulcast },
  };
})();
