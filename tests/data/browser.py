"""A real headless browser for page tests: Chromium driven over the DevTools protocol (websocket on 127.0.0.1).

:func:`load_page` opens a file in a fresh headless Chromium, records every console error, uncaught exception and
failed resource load, waits for each ``<video>`` to decode its first frame and play, and returns what the page
shows (video durations and sizes, SVG plot sizes).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser") if shutil.which(n)), None)

INSPECT_JS = """
(async () => {
  const wait = (v) => new Promise((done) => {
    if (v.readyState >= 2) return done();
    v.addEventListener('loadeddata', done, {once: true});
    v.addEventListener('error', done, {once: true});
    setTimeout(done, 8000);
  });
  const videos = [];
  for (const v of document.querySelectorAll('video')) {
    v.muted = true;
    await wait(v);
    let played = false;
    if (!v.error) {
      try {
        await v.play();
        await new Promise((done) => { const t0 = v.currentTime;
          const check = () => (v.currentTime > t0 ? (played = true, done()) : null);
          v.addEventListener('timeupdate', check); setTimeout(done, 4000); });
      } catch (e) { played = false; }
    }
    videos.push({src: v.getAttribute('src'), duration: v.duration, width: v.videoWidth,
                 height: v.videoHeight, error: v.error ? v.error.code : null, played});
  }
  const plots = [...document.querySelectorAll('svg')].map((s) => {
    const box = s.getBoundingClientRect();
    return {width: box.width, height: box.height, lines: s.querySelectorAll('polyline').length,
            bars: s.querySelectorAll('rect.bar').length, spans: s.querySelectorAll('rect.span').length};
  });
  const links = [...document.querySelectorAll('a')].map((a) => a.getAttribute('href'));
  return JSON.stringify({title: document.title, videos, plots, links,
                         rows: document.querySelectorAll('tbody tr').length});
})()
"""


@dataclass
class PageReport:
    """What a page showed: its title, videos, SVG plots, links, table rows, and every error it raised."""

    title: str
    videos: list[dict]
    plots: list[dict]
    links: list[str]
    rows: int
    errors: list[str] = field(default_factory=list)


class _Session:
    def __init__(self, url: str):
        from websockets.sync.client import connect

        self.ws = connect(url, max_size=None, open_timeout=30)
        self.next_id = 0
        self.events: list[dict] = []

    def call(self, method: str, attached: str | None = None, timeout: float = 60, **params) -> dict:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params}
        if attached:
            message["sessionId"] = attached
        self.ws.send(json.dumps(message))
        while True:
            reply = json.loads(self.ws.recv(timeout=timeout))
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 60) -> dict:
        for event in self.events:
            if event.get("method") == method:
                return event
        while True:
            event = json.loads(self.ws.recv(timeout=timeout))
            self.events.append(event)
            if event.get("method") == method:
                return event


def _errors(events: list[dict]) -> list[str]:
    found = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.exceptionThrown":
            found.append(params["exceptionDetails"].get("text", "exception"))
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            found.append(" ".join(str(a.get("value", a.get("description"))) for a in params.get("args", [])))
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            found.append(f"{params['entry'].get('text')} {params['entry'].get('url', '')}")
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            found.append(f"load failed: {params.get('errorText')}")
    return found


def load_page(path: Path, timeout: float = 90) -> PageReport:
    """Open ``path`` in headless Chromium; play its videos; return a :class:`PageReport`."""
    if CHROMIUM is None:
        raise RuntimeError("chromium is not installed (bash .ci/setup.sh installs it)")
    # chromium's helper processes may still write to the profile while it is removed: end the whole process
    # group first, and let a late file not fail the test
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        browser = subprocess.Popen(
            [
                CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--mute-audio",
                "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", f"--user-data-dir={profile}",
                "--autoplay-policy=no-user-gesture-required", "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )  # fmt: skip
        try:
            url = None
            for line in browser.stderr:
                match = re.search(r"DevTools listening on (ws://\S+)", line)
                if match:
                    url = match.group(1)
                    break
            if url is None:
                raise RuntimeError("chromium did not start its DevTools endpoint")
            cdp = _Session(url)
            target = cdp.call("Target.createTarget", url="about:blank")["targetId"]
            attached = cdp.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
            for domain in ("Runtime", "Log", "Page", "Network"):
                cdp.call(f"{domain}.enable", attached)
            cdp.call("Page.navigate", attached, url=Path(path).resolve().as_uri())
            cdp.wait_for("Page.loadEventFired", timeout)
            result = cdp.call(
                "Runtime.evaluate",
                attached,
                timeout,
                expression=INSPECT_JS,
                awaitPromise=True,
                returnByValue=True,
            )
            shown = json.loads(result["result"]["value"])
            cdp.ws.close()
            return PageReport(**shown, errors=_errors(cdp.events))
        finally:
            _end_group(browser)


def _end_group(process: subprocess.Popen) -> None:
    """SIGTERM chromium's process group, wait for it, SIGKILL what is left."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
    except ProcessLookupError:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
