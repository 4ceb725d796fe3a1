// The self-contained WHIP/WHEP client the browser tests inject into a blank page served (by
// Playwright's request interception) on the node's public origin. Plain RTCPeerConnection +
// fetch: it does not depend on the node's demo page. Exposes window.e2e.
(() => {
  const sessions = [];
  let media = null;

  // Non-loopback candidates are dropped from the offer unless asked to keep them, so that no
  // peer ever sends to an address other than 127.0.0.1 (they are still gathered, reported by
  // getStats and checked by the privacy check).
  const keepAll = new URLSearchParams(location.search).get('keepall') === '1';
  const isLoopback = (addr) => addr.startsWith('127.') || addr === '::1' || addr === 'localhost';

  function filterOffer(sdp) {
    if (keepAll) return sdp;
    return sdp
      .split('\r\n')
      .filter((l) => !l.startsWith('a=candidate:') || isLoopback(l.split(' ')[4] || ''))
      .join('\r\n');
  }

  function waitGathering(pc, ms) {
    if (pc.iceGatheringState === 'complete') return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      pc.addEventListener('icegatheringstatechange', () => {
        if (pc.iceGatheringState === 'complete') {
          clearTimeout(t);
          resolve();
        }
      });
    });
  }

  async function negotiate(s, url) {
    await s.pc.setLocalDescription(await s.pc.createOffer());
    await waitGathering(s.pc, 3000);
    s.offer = s.pc.localDescription.sdp;
    s.t0 = performance.now();
    const r = await fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/sdp' },
      body: filterOffer(s.offer),
    });
    const text = await r.text();
    s.status = r.status;
    if (r.status !== 201) throw new Error(`POST ${url} -> ${r.status}: ${text.slice(0, 300)}`);
    const loc = r.headers.get('Location');
    if (!loc) throw new Error(`POST ${url} -> 201 without Location`);
    s.location = new URL(loc, url).href;
    s.answer = text;
    await s.pc.setRemoteDescription({ type: 'answer', sdp: text });
  }

  function newSession(role, stream) {
    const pc = new RTCPeerConnection({ iceServers: [] });
    const s = { role, stream, pc, t0: 0, firstFrameMs: null, location: null, negotiations: 0 };
    pc.addEventListener('signalingstatechange', () => {
      if (pc.signalingState === 'have-local-offer') s.negotiations += 1;
    });
    sessions.push(s);
    return s;
  }

  async function publish(base, stream, opts = {}) {
    const simulcast = opts.simulcast !== false;
    if (!media) {
      media = await navigator.mediaDevices.getUserMedia({
        audio: true,
        video: { width: 1280, height: 720, frameRate: 30 },
      });
    }
    const s = newSession('publisher', stream);
    s.pc.addTransceiver(media.getAudioTracks()[0], { direction: 'sendonly', streams: [media] });
    s.pc.addTransceiver(media.getVideoTracks()[0], {
      direction: 'sendonly',
      streams: [media],
      sendEncodings: simulcast
        ? [
            { rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150000 },
            { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500000 },
            { rid: 'f', scaleResolutionDownBy: 1, maxBitrate: 1500000 },
          ]
        : undefined,
    });
    await negotiate(s, `${base}/whip/${encodeURIComponent(stream)}`);
    return sessions.length - 1;
  }

  async function play(base, stream) {
    const s = newSession('viewer', stream);
    s.pc.addTransceiver('audio', { direction: 'recvonly' });
    s.pc.addTransceiver('video', { direction: 'recvonly' });
    const video = document.createElement('video');
    video.autoplay = true;
    video.muted = true;
    video.playsInline = true;
    document.body.appendChild(video);
    const ms = new MediaStream();
    s.pc.addEventListener('track', (ev) => {
      ms.addTrack(ev.track);
      video.srcObject = ms;
      video.play().catch(() => {});
    });
    await negotiate(s, `${base}/whep/${encodeURIComponent(stream)}`);
    // Time from the WHEP POST to the first decoded frame: getStats polled every 50 ms.
    const deadline = s.t0 + 30000;
    const poll = async () => {
      if (s.pc.connectionState === 'closed' || performance.now() > deadline) return;
      const st = await summary(s.pc);
      if (st.video && st.video.framesDecoded > 0) {
        s.firstFrameMs = Math.round(performance.now() - s.t0);
        return;
      }
      setTimeout(poll, 50);
    };
    poll();
    return sessions.length - 1;
  }

  async function stop(i) {
    const s = sessions[i];
    if (!s || s.stopped) return null;
    s.stopped = true;
    let status = null;
    if (s.location) {
      try {
        status = (await fetch(s.location, { method: 'DELETE' })).status;
      } catch (e) {
        status = String(e);
      }
    }
    s.pc.close();
    return status;
  }

  async function summary(pc) {
    const rep = await pc.getStats();
    const out = { videos: [], video: null, audio: null, outbound: [], localCandidates: [], selected: null };
    let selectedPairId = null;
    const byId = new Map();
    rep.forEach((r) => byId.set(r.id, r));
    rep.forEach((r) => {
      if (r.type === 'inbound-rtp' && r.kind === 'video') {
        out.videos.push({
          ssrc: r.ssrc,
          framesDecoded: r.framesDecoded || 0,
          packetsReceived: r.packetsReceived || 0,
          packetsLost: r.packetsLost || 0,
          jitter: r.jitter || 0,
          frameWidth: r.frameWidth,
          frameHeight: r.frameHeight,
        });
      } else if (r.type === 'inbound-rtp' && r.kind === 'audio') {
        out.audio = {
          ssrc: r.ssrc,
          packetsReceived: r.packetsReceived || 0,
          packetsLost: r.packetsLost || 0,
          jitter: r.jitter || 0,
        };
      } else if (r.type === 'outbound-rtp') {
        out.outbound.push({
          kind: r.kind,
          rid: r.rid,
          ssrc: r.ssrc,
          bytesSent: r.bytesSent,
          framesEncoded: r.framesEncoded,
          frameWidth: r.frameWidth,
          frameHeight: r.frameHeight,
          active: r.active,
        });
      } else if (r.type === 'local-candidate') {
        out.localCandidates.push({
          address: r.address || r.ip,
          port: r.port,
          protocol: r.protocol,
          candidateType: r.candidateType,
        });
      } else if (r.type === 'transport' && r.selectedCandidatePairId) {
        selectedPairId = r.selectedCandidatePairId;
      }
    });
    if (!selectedPairId) {
      rep.forEach((r) => {
        if (r.type === 'candidate-pair' && r.nominated && r.state === 'succeeded') selectedPairId = r.id;
      });
    }
    const pair = selectedPairId && byId.get(selectedPairId);
    if (pair) {
      const l = byId.get(pair.localCandidateId);
      const rc = byId.get(pair.remoteCandidateId);
      out.selected = {
        local: l && { address: l.address || l.ip, port: l.port, protocol: l.protocol },
        remote: rc && { address: rc.address || rc.ip, port: rc.port, protocol: rc.protocol },
      };
    }
    out.videos.sort((a, b) => b.framesDecoded - a.framesDecoded);
    out.video = out.videos[0] || null;
    return out;
  }

  async function stats(i) {
    const s = sessions[i];
    const st = await summary(s.pc);
    return {
      role: s.role,
      stream: s.stream,
      connectionState: s.pc.connectionState,
      iceConnectionState: s.pc.iceConnectionState,
      firstFrameMs: s.firstFrameMs,
      negotiations: s.negotiations,
      location: s.location,
      answerHasSimulcastRecv: /a=simulcast:recv/.test(s.answer || ''),
      // Candidates the browser gathered, from its own offer (the unfiltered one).
      offerCandidates: (s.offer || '')
        .split('\r\n')
        .filter((l) => l.startsWith('a=candidate:'))
        .map((l) => {
          const p = l.split(' ');
          return { address: p[4], port: Number(p[5]), protocol: p[2].toLowerCase() };
        }),
      ...st,
    };
  }

  window.e2e = { publish, play, stop, stats, count: () => sessions.length };
})();
