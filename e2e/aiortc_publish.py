#!/usr/bin/env python3
"""Publishes a synthetic stream to a relais node over WHIP with aiortc, an independent WebRTC
implementation: a moving gradient (640x360, VP8) and a 440 Hz sine (Opus) for N seconds.

    e2e/.venv/bin/python e2e/aiortc_publish.py --url http://127.0.0.1:19090 --stream s --seconds 25

Prints `aiortc-publish: connected` once ICE/DTLS is up, writes the client UDP ports it used to
--addresses-out (JSON, for the privacy check), DELETEs its session at the end. Exit code 0 when
the session was created (201) and reached 'connected'.
"""

import argparse
import asyncio
import fractions
import json
import math
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import aioice.ice

# aioice leaves loopback candidates out; the node and this client only talk over 127.0.0.1.
aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=False: ["127.0.0.1"]

import av  # noqa: E402
import numpy as np  # noqa: E402
from aiortc import (  # noqa: E402
    AudioStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
    VideoStreamTrack,
)

WIDTH, HEIGHT = 640, 360


class GradientTrack(VideoStreamTrack):
    """A horizontally moving colour gradient, 30 fps."""

    def __init__(self):
        super().__init__()
        x = np.arange(WIDTH, dtype=np.uint16)
        y = np.arange(HEIGHT, dtype=np.uint16)[:, None]
        self.base = (x[None, :] + y) % 256
        self.n = 0

    async def recv(self):
        pts, time_base = await self.next_timestamp()
        shift = (self.n * 4) % 256
        self.n += 1
        img = np.empty((HEIGHT, WIDTH, 3), dtype=np.uint8)
        img[:, :, 0] = (self.base + shift) % 256
        img[:, :, 1] = (self.base * 2 + shift) % 256
        img[:, :, 2] = 255 - (self.base + shift) % 256
        frame = av.VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts = pts
        frame.time_base = time_base
        return frame


class SineTrack(AudioStreamTrack):
    """A 440 Hz sine, 48 kHz mono, 20 ms frames."""

    def __init__(self):
        super().__init__()
        self.sample = 0
        self.t0 = None

    async def recv(self):
        samples = 960
        if self.t0 is None:
            self.t0 = time.time()
        wait = self.t0 + self.sample / 48000 - time.time()
        if wait > 0:
            await asyncio.sleep(wait)
        t = (np.arange(samples) + self.sample) / 48000
        data = (np.sin(2 * math.pi * 440 * t) * 8000).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(data, format="s16", layout="mono")
        frame.sample_rate = 48000
        frame.pts = self.sample
        frame.time_base = fractions.Fraction(1, 48000)
        self.sample += samples
        return frame


def http(method, url, body=None, timeout=10):
    req = urllib.request.Request(url, data=body, method=method)
    if body is not None:
        req.add_header("Content-Type", "application/sdp")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode(errors="replace")


def client_ports(pc):
    """The local UDP ports of this peer's ICE transports (private aiortc/aioice internals)."""
    ports = set()
    for t in pc.getTransceivers():
        try:
            conn = t.sender.transport.transport.iceGatherer._connection
            for c in conn.local_candidates:
                ports.add(c.port)
        except AttributeError:
            pass
    return sorted(ports)


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True, help="the node's public base URL")
    ap.add_argument("--stream", required=True)
    ap.add_argument("--seconds", type=float, default=25)
    ap.add_argument("--addresses-out")
    a = ap.parse_args()

    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver(SineTrack(), direction="sendonly")
    video = pc.addTransceiver(GradientTrack(), direction="sendonly")
    video.setCodecPreferences(
        [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType == "video/VP8"]
    )
    connected = asyncio.Event()

    @pc.on("connectionstatechange")
    async def on_state():
        print(f"aiortc-publish: connectionState {pc.connectionState}", flush=True)
        if pc.connectionState == "connected":
            connected.set()

    await pc.setLocalDescription(await pc.createOffer())  # aiortc gathers before returning
    url = f"{a.url.rstrip('/')}/whip/{urllib.parse.quote(a.stream)}"
    loop = asyncio.get_running_loop()
    status, headers, answer = await loop.run_in_executor(
        None, http, "POST", url, pc.localDescription.sdp.encode()
    )
    print(f"aiortc-publish: POST {url} -> {status}", flush=True)
    ok = False
    location = None
    try:
        if status != 201:
            print(f"aiortc-publish: {answer[:300]}", file=sys.stderr)
            return 1
        location = urllib.parse.urljoin(url, headers.get("Location") or headers.get("location") or "")
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        try:
            await asyncio.wait_for(connected.wait(), 10)
            print("aiortc-publish: connected", flush=True)
            ok = True
        except asyncio.TimeoutError:
            print("aiortc-publish: not connected within 10 s", file=sys.stderr)
        if a.addresses_out:
            with open(a.addresses_out, "w") as f:
                json.dump({"ports": client_ports(pc), "addresses": []}, f)
        if ok:
            await asyncio.sleep(a.seconds)
    finally:
        if location:
            st, _, _ = await loop.run_in_executor(None, http, "DELETE", location)
            print(f"aiortc-publish: DELETE {location} -> {st}", flush=True)
        await pc.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(asyncio.wait_for(main(), 120)))
