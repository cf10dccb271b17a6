"""Open a report in headless Chromium and check it (and take screenshots).

Talks the Chrome DevTools Protocol over ``--remote-debugging-pipe`` (file descriptors 3 and 4,
messages separated by NUL bytes), so it needs no Python package beyond the standard library: only
a Chromium binary (Debian's ``chromium``).
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["BrowserCheck", "find_chromium", "check_report", "screenshot"]

_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--mute-audio",
    "--remote-debugging-pipe",
)

_LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")

# Every plotly div must be rendered (an SVG with drawn marks and non-empty data) and every image
# decoded; returns a JSON summary.
_PAGE_STATE = r"""
(() => {
  const plots = Array.from(document.querySelectorAll('.js-plotly-plot, .plotly-graph-div'));
  const uniq = Array.from(new Set(plots));
  const plotState = uniq.map(d => ({
    id: d.id,
    svg: d.querySelectorAll('.main-svg').length,
    traces: (d._fullData || []).length,
    marks: d.querySelectorAll('path.point, path.js-line, .hm image, image, g.trace, rect.bg').length,
    height: d.getBoundingClientRect().height,
  }));
  const imgs = Array.from(document.images).map(im => ({
    alt: im.alt, complete: im.complete, width: im.naturalWidth,
  }));
  let prov = null;
  try { prov = JSON.parse(document.getElementById('provenance-json').textContent); } catch (e) {}
  const anchors = Array.from(document.querySelectorAll('#sidebar a')).map(a => a.getAttribute('href'));
  const missing = anchors.filter(h => h.startsWith('#') && !document.getElementById(h.slice(1)));
  return JSON.stringify({plots: plotState, images: imgs, provenance: prov !== null,
                         anchors: anchors.length, missingAnchors: missing,
                         title: document.title});
})()
"""


# Text boxes (one per line of each text node, HTML and SVG), clipped by scrolling/overflow
# containers; pairs that overlap by more than 1 px in both directions. Scope: the first screen
# (the viewport at scroll 0), and each plot as a whole.
_TEXT_LAYOUT = r"""
(() => {
  const W = window.innerWidth, H = window.innerHeight;
  function clip(el, r) {
    let c = {l: r.left, t: r.top, r: r.right, b: r.bottom};
    for (let a = el.parentElement; a && a !== document.documentElement; a = a.parentElement) {
      const cs = getComputedStyle(a);
      if (cs.overflowX !== 'visible' || cs.overflowY !== 'visible') {
        const ar = a.getBoundingClientRect();
        c = {l: Math.max(c.l, ar.left), t: Math.max(c.t, ar.top),
             r: Math.min(c.r, ar.right), b: Math.min(c.b, ar.bottom)};
      }
    }
    return c;
  }
  function boxes(root) {
    const out = [];
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    let n;
    while ((n = walker.nextNode())) {
      const text = n.textContent.trim();
      if (!text) continue;
      const el = n.parentElement;
      if (!el || el.closest('script, style, noscript, title')) continue;
      const cs = getComputedStyle(el);
      if (cs.visibility === 'hidden' || cs.display === 'none') continue;
      let op = 1;
      for (let a = el; a; a = a.parentElement) { op *= parseFloat(getComputedStyle(a).opacity); }
      if (op < 0.05) continue;
      let rects;
      if (el instanceof SVGElement) { rects = [el.getBoundingClientRect()]; }
      else { const range = document.createRange(); range.selectNodeContents(n);
             rects = Array.from(range.getClientRects()); }
      for (const r of rects) {
        if (r.width < 1 || r.height < 1) continue;
        const c = clip(el, r);
        if (c.r - c.l < 1 || c.b - c.t < 1) continue;
        out.push({text: text.slice(0, 60), l: c.l, t: c.t, r: c.r, b: c.b});
      }
    }
    return out;
  }
  function overlaps(bs) {
    const out = [];
    for (let i = 0; i < bs.length; i++) for (let j = i + 1; j < bs.length; j++) {
      const a = bs[i], b = bs[j];
      if (Math.min(a.r, b.r) - Math.max(a.l, b.l) > 1 && Math.min(a.b, b.b) - Math.max(a.t, b.t) > 1)
        out.push([a.text, b.text]);
    }
    return out;
  }
  window.scrollTo(0, 0);
  const screen = boxes(document.body).filter(c => c.b > 0 && c.t < H && c.r > 0 && c.l < W);
  const plots = {};
  document.querySelectorAll('.plotly-graph-div').forEach(d => { plots[d.id] = overlaps(boxes(d)); });
  const rect = id => { const e = document.getElementById(id); if (!e) return null;
    const r = e.getBoundingClientRect(); return {top: r.top, bottom: r.bottom, left: r.left,
    right: r.right, height: r.height}; };
  return JSON.stringify({viewport: [W, H], nText: screen.length, overlaps: overlaps(screen),
    plotOverlaps: plots, headline: rect('headline'), verdict: rect('verdict'),
    verdictClass: (document.getElementById('verdict') || {className: ''}).className});
})()
"""


@dataclass
class BrowserCheck:
    """What Chromium saw when opening a report."""

    url: str
    console_errors: list[str] = field(default_factory=list)
    network_requests: list[str] = field(default_factory=list)
    plots: list[dict[str, Any]] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)
    provenance_json: bool = False
    missing_anchors: list[str] = field(default_factory=list)
    title: str = ""
    viewport: tuple[int, int] = (0, 0)
    first_screen_texts: int = 0
    first_screen_overlaps: list[list[str]] = field(default_factory=list)
    plot_overlaps: dict[str, list[list[str]]] = field(default_factory=dict)
    headline_box: dict[str, float] | None = None
    verdict_box: dict[str, float] | None = None
    verdict_class: str = ""

    @property
    def overlapping_text(self) -> list[list[str]]:
        """Pairs of overlapping text boxes: in the first screen, and inside any plot."""
        out = list(self.first_screen_overlaps)
        for pairs in self.plot_overlaps.values():
            out.extend(pairs)
        return out

    def in_first_screen(self, box: dict[str, float] | None) -> bool:
        """Whether ``box`` (``headline_box``, ``verdict_box``) lies fully inside the viewport
        at scroll 0."""
        return box is not None and box["top"] >= 0 and box["bottom"] <= self.viewport[1]

    @property
    def empty_plots(self) -> list[str]:
        """Ids of plotly divs that did not render."""
        return [
            p["id"]
            for p in self.plots
            if not (p["svg"] and p["traces"] and p["marks"] and p["height"])
        ]

    @property
    def broken_images(self) -> list[str]:
        """Alt texts of images that did not decode."""
        return [i["alt"] for i in self.images if not (i["complete"] and i["width"] > 0)]

    @property
    def ok(self) -> bool:
        """No console error, no network request, every plot and image rendered, no
        overlapping text."""
        return not (
            self.console_errors
            or self.network_requests
            or self.empty_plots
            or self.broken_images
            or self.missing_anchors
            or self.overlapping_text
        )


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome binary (``BIOSTRUCT_CHROMIUM`` first), or None."""
    env = os.environ.get("BIOSTRUCT_CHROMIUM")
    if env and Path(env).exists():
        return env
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


class _Cdp:
    """A minimal CDP client over the debugging pipe."""

    def __init__(self, binary: str, width: int, height: int) -> None:
        self._profile = tempfile.mkdtemp(prefix="biostruct-chromium-")
        to_chrome_r, self._to_chrome_w = os.pipe()
        self._from_chrome_r, from_chrome_w = os.pipe()

        def wire() -> None:  # runs in the child: Chromium expects the pipe on fds 3 and 4
            # move both ends above 4 first, so neither dup2 below clobbers the other or is a
            # no-op that keeps the close-on-exec flag
            high_r = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10)
            high_w = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10)
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)

        args = [
            binary,
            *_FLAGS,
            f"--user-data-dir={self._profile}",
            f"--window-size={width},{height}",
        ]
        self._proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=wire,
            close_fds=False,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._next_id = 0
        self._events: queue.Queue[dict[str, Any]] = queue.Queue()
        self._replies: dict[int, dict[str, Any]] = {}
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.log: list[dict[str, Any]] = []

    def _read(self) -> None:
        buf = b""
        with os.fdopen(self._from_chrome_r, "rb", buffering=0) as fh:
            while True:
                chunk = fh.read(1 << 16)
                if not chunk:
                    break
                buf += chunk
                while b"\0" in buf:
                    raw, buf = buf.split(b"\0", 1)
                    msg = json.loads(raw)
                    if "id" in msg:
                        with self._cond:
                            self._replies[msg["id"]] = msg
                            self._cond.notify_all()
                    else:
                        self._events.put(msg)

    def send(
        self,
        method: str,
        params: dict | None = None,
        session: str | None = None,
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        self._next_id += 1
        mid = self._next_id
        msg: dict[str, Any] = {"id": mid, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_chrome_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        with self._cond:
            while mid not in self._replies:
                left = deadline - time.monotonic()
                if left <= 0 or self._proc.poll() is not None:
                    raise RuntimeError(f"chromium did not answer {method}")
                self._cond.wait(min(left, 0.5))
            reply = self._replies.pop(mid)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def drain(self) -> None:
        while True:
            try:
                self.log.append(self._events.get_nowait())
            except queue.Empty:
                return

    def wait_event(self, method: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                ev = self._events.get(timeout=0.2)
            except queue.Empty:
                continue
            self.log.append(ev)
            if ev.get("method") == method:
                return True
        return False

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except (RuntimeError, OSError):
            pass
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        try:
            os.close(self._to_chrome_w)
        except OSError:
            pass
        shutil.rmtree(self._profile, ignore_errors=True)


def _open(
    path: str | Path, binary: str | None, width: int, height: int, settle_s: float, timeout_s: float
) -> tuple[_Cdp, str, BrowserCheck]:
    binary = binary or find_chromium()
    if binary is None:
        raise FileNotFoundError("no chromium binary found (install Debian's 'chromium')")
    url = Path(path).resolve().as_uri()
    cdp = _Cdp(binary, width, height)
    try:
        target = cdp.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = cdp.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Runtime", "Log", "Network", "Page"):
            cdp.send(f"{domain}.enable", session=session)
        cdp.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        cdp.send("Page.navigate", {"url": url}, session=session)
        if not cdp.wait_event("Page.loadEventFired", timeout_s):
            raise RuntimeError(f"{url} did not finish loading within {timeout_s} s")
        check = BrowserCheck(url=url)
        deadline = time.monotonic() + timeout_s
        while True:  # wait until plots are drawn (plotly renders asynchronously)
            time.sleep(settle_s)
            state = json.loads(
                cdp.send(
                    "Runtime.evaluate",
                    {"expression": _PAGE_STATE, "returnByValue": True},
                    session=session,
                )["result"]["value"]
            )
            check.plots, check.images = state["plots"], state["images"]
            if (not check.empty_plots and not check.broken_images) or time.monotonic() > deadline:
                break
        check.provenance_json = state["provenance"]
        check.missing_anchors = state["missingAnchors"]
        check.title = state["title"]
        layout = json.loads(
            cdp.send(
                "Runtime.evaluate",
                {"expression": _TEXT_LAYOUT, "returnByValue": True},
                session=session,
            )["result"]["value"]
        )
        check.viewport = (int(layout["viewport"][0]), int(layout["viewport"][1]))
        check.first_screen_texts = int(layout["nText"])
        check.first_screen_overlaps = layout["overlaps"]
        check.plot_overlaps = {k: v for k, v in layout["plotOverlaps"].items() if v}
        check.headline_box = layout["headline"]
        check.verdict_box = layout["verdict"]
        check.verdict_class = layout["verdictClass"]
        cdp.drain()
        for ev in cdp.log:
            m, p = ev.get("method"), ev.get("params", {})
            if m == "Network.requestWillBeSent":
                req = p.get("request", {}).get("url", "")
                if not req.startswith(_LOCAL_SCHEMES):
                    check.network_requests.append(req)
            elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                check.console_errors.append(
                    " ".join(
                        str(a.get("value", a.get("description", ""))) for a in p.get("args", [])
                    )
                )
            elif m == "Runtime.exceptionThrown":
                d = p.get("exceptionDetails", {})
                check.console_errors.append(
                    d.get("exception", {}).get("description") or d.get("text", "exception")
                )
            elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                e = p["entry"]
                check.console_errors.append(
                    f"{e.get('source')}: {e.get('text')} {e.get('url', '')}"
                )
        return cdp, session, check
    except BaseException:
        cdp.close()
        raise


def check_report(
    path: str | Path,
    *,
    binary: str | None = None,
    settle_s: float = 0.5,
    timeout_s: float = 60.0,
    width: int = 1400,
    height: int = 900,
) -> BrowserCheck:
    """Open ``path`` from ``file://`` in headless Chromium and report what happened.

    Parameters
    ----------
    path
        The HTML file.
    binary
        Chromium executable (default :func:`find_chromium`).
    settle_s, timeout_s
        Poll interval, and the longest wait for the page load and for plots to render.
    width, height
        The viewport: the "first screen" whose text is checked for overlaps.

    Returns
    -------
    BrowserCheck
        Console errors, non-local requests, per-plot and per-image render state, overlapping
        text boxes, and where the headline and the verdict lie.
    """
    cdp, _, check = _open(path, binary, width, height, settle_s, timeout_s)
    cdp.close()
    return check


def screenshot(
    path: str | Path,
    png: str | Path,
    *,
    binary: str | None = None,
    width: int = 1400,
    height: int = 900,
    timeout_s: float = 60.0,
) -> Path:
    """Save a PNG of the first screen of a report (after its plots rendered)."""
    cdp, session, _ = _open(path, binary, width, height, 0.5, timeout_s)
    try:
        data = cdp.send("Page.captureScreenshot", {"format": "png"}, session=session)["data"]
    finally:
        cdp.close()
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    tmp = png.with_name(f".{png.name}.tmp")
    tmp.write_bytes(base64.b64decode(data))
    os.replace(tmp, png)
    return png
