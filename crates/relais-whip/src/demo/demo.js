// relais WHIP / WHEP demo. Plain JavaScript, no dependencies.
//
// The page's role comes from <body data-role="publish|watch">. Query parameters:
//   stream=NAME    stream name (default "demo")
//   autostart=1    start without a click
//   token=...      bearer token sent in the Authorization header
//   simulcast=0    publish a single video encoding (publish page only)
//
// For automated tests: window.relaisDemo = { role, pc, state(), stats(), stop() }.
// The page never shows SDP or ICE candidates (they carry addresses).
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const role = document.body.dataset.role;
  const params = new URLSearchParams(location.search);

  const session = {
    pc: null,
    stream: null, // local MediaStream (publish)
    resource: null, // session URL from the Location header, for DELETE
    token: '',
    phase: 'idle', // idle | connecting | connected | stopped | error
    error: null,
    timer: null,
  };

  function authHeaders(extra) {
    const headers = Object.assign({}, extra);
    if (session.token) headers.Authorization = `Bearer ${session.token}`;
    return headers;
  }

  function setPhase(phase, error) {
    session.phase = phase;
    session.error = error || null;
    render();
  }

  function state() {
    const pc = session.pc;
    return {
      phase: session.phase,
      error: session.error,
      iceConnectionState: pc ? pc.iceConnectionState : 'new',
      connectionState: pc ? pc.connectionState : 'new',
      resource: session.resource,
    };
  }

  function render() {
    const s = state();
    const el = $('state');
    el.textContent = `${s.phase} · ICE ${s.iceConnectionState} · connection ${s.connectionState}` +
      (s.error ? ` · ${s.error}` : '');
    el.classList.toggle('error', s.phase === 'error');
    $('start').disabled = s.phase === 'connecting' || s.phase === 'connected';
    $('stop').disabled = !(s.phase === 'connecting' || s.phase === 'connected');
  }

  // Resolves when ICE gathering completes, or after `ms` (whatever is gathered by then goes
  // into the offer; the node is ICE-lite and needs no trickle).
  function gatheringComplete(pc, ms) {
    if (pc.iceGatheringState === 'complete') return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        if (pc.iceGatheringState !== 'complete') return;
        pc.removeEventListener('icegatheringstatechange', done);
        resolve();
      };
      pc.addEventListener('icegatheringstatechange', done);
      setTimeout(resolve, ms);
    });
  }

  // Offer → POST → answer. `path` is "/whip/NAME" or "/whep/NAME".
  async function negotiate(pc, path) {
    await pc.setLocalDescription(await pc.createOffer());
    await gatheringComplete(pc, 2000);
    const url = new URL(path, location.href);
    const response = await fetch(url, {
      method: 'POST',
      headers: authHeaders({ 'Content-Type': 'application/sdp' }),
      body: pc.localDescription.sdp,
    });
    const body = await response.text();
    if (response.status !== 201) {
      throw new Error(`HTTP ${response.status}: ${body.slice(0, 200)}`);
    }
    const loc = response.headers.get('Location');
    session.resource = loc ? new URL(loc, url).href : null;
    await pc.setRemoteDescription({ type: 'answer', sdp: body });
  }

  function newPeerConnection() {
    const pc = new RTCPeerConnection({ iceServers: [] });
    pc.addEventListener('iceconnectionstatechange', render);
    pc.addEventListener('connectionstatechange', () => {
      if (pc.connectionState === 'connected' && session.phase === 'connecting') {
        setPhase('connected');
      } else if (pc.connectionState === 'failed' && session.phase !== 'stopped') {
        setPhase('error', 'connection failed');
      } else {
        render();
      }
    });
    session.pc = pc;
    window.relaisDemo.pc = pc;
    return pc;
  }

  async function startPublish(name, simulcast) {
    const media = await navigator.mediaDevices.getUserMedia({
      audio: true,
      video: { width: 1280, height: 720 },
    });
    session.stream = media;
    $('video').srcObject = media;
    const pc = newPeerConnection();
    const [audio] = media.getAudioTracks();
    const [video] = media.getVideoTracks();
    pc.addTransceiver(audio || 'audio', { direction: 'sendonly', streams: [media] });
    const sendEncodings = simulcast
      ? [
          { rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150000 },
          { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500000 },
          { rid: 'f', maxBitrate: 1500000 },
        ]
      : [{ maxBitrate: 1500000 }];
    pc.addTransceiver(video || 'video', { direction: 'sendonly', streams: [media], sendEncodings });
    await negotiate(pc, `/whip/${encodeURIComponent(name)}`);
  }

  async function startWatch(name) {
    const pc = newPeerConnection();
    const remote = new MediaStream();
    $('video').srcObject = remote;
    pc.addEventListener('track', (event) => {
      remote.addTrack(event.track);
    });
    pc.addTransceiver('audio', { direction: 'recvonly' });
    pc.addTransceiver('video', { direction: 'recvonly' });
    await negotiate(pc, `/whep/${encodeURIComponent(name)}`);
  }

  async function start() {
    const name = $('stream').value.trim();
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(name)) {
      setPhase('error', 'stream name: 1-64 characters of A-Z a-z 0-9 _ -');
      return;
    }
    session.token = $('token').value.trim();
    session.resource = null;
    setPhase('connecting');
    try {
      if (role === 'publish') {
        await startPublish(name, $('simulcast').checked);
      } else {
        await startWatch(name);
      }
      render();
      if (session.timer === null) session.timer = setInterval(showStats, 1000);
    } catch (err) {
      await teardown();
      setPhase('error', err && err.message ? err.message : String(err));
    }
  }

  async function teardown() {
    const { pc, stream, resource } = session;
    session.resource = null;
    if (resource) {
      try {
        await fetch(resource, { method: 'DELETE', headers: authHeaders({}) });
      } catch (_) {
        // The node ends the session on its own when media stops.
      }
    }
    if (pc) pc.close();
    if (stream) stream.getTracks().forEach((t) => t.stop());
    session.stream = null;
  }

  async function stop() {
    await teardown();
    setPhase('stopped');
  }

  // Counters from getStats(); no candidate or address fields are read.
  async function stats() {
    const pc = session.pc;
    const out = role === 'publish'
      ? { bytesSent: 0, framesEncoded: 0, audioPacketsSent: 0, videoPacketsSent: 0, layers: {} }
      : {
          framesDecoded: 0, frameWidth: 0, frameHeight: 0, bytesReceived: 0,
          audioPacketsReceived: 0, videoPacketsReceived: 0, audioJitter: 0, videoJitter: 0,
        };
    if (!pc) return out;
    const report = await pc.getStats();
    report.forEach((s) => {
      if (role === 'publish' && s.type === 'outbound-rtp') {
        out.bytesSent += s.bytesSent || 0;
        if (s.kind === 'audio') out.audioPacketsSent += s.packetsSent || 0;
        if (s.kind === 'video') {
          out.videoPacketsSent += s.packetsSent || 0;
          out.framesEncoded += s.framesEncoded || 0;
          out.layers[s.rid || '-'] = {
            bytesSent: s.bytesSent || 0,
            framesEncoded: s.framesEncoded || 0,
            frameWidth: s.frameWidth || 0,
            frameHeight: s.frameHeight || 0,
          };
        }
      } else if (role === 'watch' && s.type === 'inbound-rtp') {
        out.bytesReceived += s.bytesReceived || 0;
        if (s.kind === 'audio') {
          out.audioPacketsReceived += s.packetsReceived || 0;
          out.audioJitter = s.jitter || 0;
        }
        if (s.kind === 'video') {
          out.videoPacketsReceived += s.packetsReceived || 0;
          out.videoJitter = s.jitter || 0;
          out.framesDecoded += s.framesDecoded || 0;
          out.frameWidth = s.frameWidth || out.frameWidth;
          out.frameHeight = s.frameHeight || out.frameHeight;
        }
      }
    });
    return out;
  }

  async function showStats() {
    if (!session.pc) return;
    const s = await stats();
    const lines = [];
    if (role === 'publish') {
      lines.push(`bytes sent ${s.bytesSent} · audio packets ${s.audioPacketsSent}` +
        ` · video packets ${s.videoPacketsSent}`);
      Object.keys(s.layers).sort().forEach((rid) => {
        const l = s.layers[rid];
        lines.push(`  rid ${rid}: ${l.frameWidth}x${l.frameHeight}, frames encoded ` +
          `${l.framesEncoded}, bytes sent ${l.bytesSent}`);
      });
    } else {
      lines.push(`video ${s.frameWidth}x${s.frameHeight} · frames decoded ${s.framesDecoded}` +
        ` · packets ${s.videoPacketsReceived} · jitter ${(s.videoJitter * 1000).toFixed(1)} ms`);
      lines.push(`audio packets ${s.audioPacketsReceived}` +
        ` · jitter ${(s.audioJitter * 1000).toFixed(1)} ms · bytes received ${s.bytesReceived}`);
    }
    $('stats').textContent = lines.join('\n');
    render();
  }

  window.relaisDemo = { role, pc: null, state, stats, stop, start };

  $('controls').addEventListener('submit', (event) => {
    event.preventDefault();
    start();
  });
  $('stop').addEventListener('click', stop);
  const unmute = $('unmute');
  if (unmute) {
    unmute.addEventListener('click', () => {
      const video = $('video');
      video.muted = !video.muted;
      unmute.textContent = video.muted ? 'Unmute' : 'Mute';
      video.play().catch(() => {});
    });
  }

  if (params.has('stream')) $('stream').value = params.get('stream');
  if (params.has('token')) $('token').value = params.get('token');
  if (params.get('simulcast') === '0' && $('simulcast')) $('simulcast').checked = false;
  render();
  if (params.get('autostart') === '1') start();
})();
