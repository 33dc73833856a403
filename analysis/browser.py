"""Drive a local headless Chromium through the DevTools protocol (for the report's tests and benchmark).

Chromium talks the protocol over a pipe (``--remote-debugging-pipe``: commands on fd 3, replies on
fd 4, each message a JSON object ended by a NUL byte), so nothing listens on a port and nothing
beyond the standard library and the system's ``chromium`` is needed: no driver, no download.

    with Chromium() as browser:
        browser.open(Path("report.html"))
        print(browser.eval("document.title"), browser.errors)
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--disable-default-apps", "--mute-audio", "--hide-scrollbars")
# Schemes a self-contained page may load; anything else is a network request.
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")


class BrowserError(RuntimeError):
    """Chromium could not be started, answered with an error, or did not answer in time."""


def find_chromium() -> str | None:
    """Path of the system's Chromium (``$BARGAIN_CHROMIUM`` first), or None."""
    for name in (os.environ.get("BARGAIN_CHROMIUM"), "chromium", "chromium-browser"):
        path = name and shutil.which(name)
        if path:
            return path
    return None


class Chromium:
    """One headless Chromium with a fresh profile and one page.

    Everything the page reports is collected: ``errors`` holds console errors, uncaught exceptions
    and browser log errors; ``requests`` holds every URL outside ``LOCAL_SCHEMES`` it asked for.
    """

    def __init__(self, binary: str | None = None, width: int = 1400, height: int = 1000,
                 timeout_s: float = 60.0) -> None:
        binary = binary or find_chromium()
        if not binary:
            raise BrowserError("no chromium found (apt-get install chromium, or set BARGAIN_CHROMIUM)")
        self.timeout_s = timeout_s
        self.errors: list[str] = []
        self.requests: list[str] = []
        self._profile = tempfile.mkdtemp(prefix="bargain-chromium-")
        # Our ends of the two pipes; the child gets theirs as fds 3 and 4 (all other fds of ours are
        # close-on-exec). Theirs are moved above 4 first so placing them cannot clobber one another.
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        child_r = fcntl.fcntl(to_child_r, fcntl.F_DUPFD_CLOEXEC, 10)
        child_w = fcntl.fcntl(from_child_w, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(to_child_r)
        os.close(from_child_w)
        cmd = [binary, *FLAGS, "--remote-debugging-pipe", f"--user-data-dir={self._profile}",
               f"--window-size={width},{height}", "about:blank"]
        try:
            self._pid: int | None = os.posix_spawn(binary, cmd, os.environ, file_actions=[
                (os.POSIX_SPAWN_DUP2, child_r, 3), (os.POSIX_SPAWN_DUP2, child_w, 4),
                *((os.POSIX_SPAWN_OPEN, fd, os.devnull, os.O_RDWR, 0) for fd in (0, 1, 2))])
        finally:
            os.close(child_r)
            os.close(child_w)
        self._buffer = b""
        self._next_id = 0
        self._events: list[dict] = []
        self._session: str | None = None
        try:
            target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
            self._session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Page", "Runtime", "Log", "Network"):
                self.send(f"{domain}.enable")
            self.send("Emulation.setDeviceMetricsOverride",
                      {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop this browser (by its PID) and remove its profile."""
        if self._pid is not None:
            os.kill(self._pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while self._exit_code() is None:
                if time.monotonic() > deadline:
                    os.kill(self._pid, signal.SIGKILL)
                    os.waitpid(self._pid, 0)
                    break
                time.sleep(0.05)
            self._pid = None
        for fd in (self._to_child, self._from_child):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self._profile, ignore_errors=True)

    def _exit_code(self) -> int | None:
        pid, status = os.waitpid(self._pid, os.WNOHANG)
        return os.waitstatus_to_exitcode(status) if pid else None

    # -- protocol -----------------------------------------------------------------------------------

    def send(self, method: str, params: dict | None = None) -> dict:
        """Send one command (to the page once attached) and return its result."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if self._session:
            message["sessionId"] = self._session
        os.write(self._to_child, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout_s
        while True:
            reply = self._read(deadline, f"{method}")
            if reply.get("id") == message["id"]:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error'].get('message')}")
                return reply.get("result", {})
            self._event(reply)

    def wait_event(self, method: str, timeout_s: float | None = None) -> dict:
        """Wait for the next event ``method`` (events already received count)."""
        for i, event in enumerate(self._events):
            if event["method"] == method:
                return self._events.pop(i)
        deadline = time.monotonic() + (timeout_s or self.timeout_s)
        while True:
            message = self._read(deadline, f"event {method}")
            if message.get("method") == method:
                self._event(message, keep=False)
                return message
            self._event(message)

    def _read(self, deadline: float, waiting_for: str) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_child], [], [], left)[0]:
                raise BrowserError(f"chromium did not answer within {self.timeout_s:g} s ({waiting_for})")
            chunk = os.read(self._from_child, 1 << 20)
            if not chunk:
                raise BrowserError(f"chromium exited while waiting for {waiting_for}")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def _event(self, message: dict, keep: bool = True) -> None:
        method, params = message.get("method"), message.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            self.errors.append(f"uncaught: {details.get('exception', {}).get('description') or details.get('text')}")
        elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
            self.errors.append("console: " + " ".join(str(a.get("value", a.get("description"))) for a in params["args"]))
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            self.errors.append(f"log: {params['entry']['text']}")
        elif method == "Network.requestWillBeSent" and not params["request"]["url"].startswith(LOCAL_SCHEMES):
            self.requests.append(params["request"]["url"])
        if keep and method:
            self._events.append(message)
            del self._events[:-200]  # only recent events can still be waited for

    # -- page ---------------------------------------------------------------------------------------

    def open(self, path: Path, ready: str | None = None) -> float:
        """Load a local file; wait for its load event (and then for the JS condition ``ready``).

        Returns the page's own measure of milliseconds from navigation start to ready.
        """
        self._events.clear()
        self.send("Page.navigate", {"url": Path(path).resolve().as_uri()})
        self.wait_event("Page.loadEventFired")
        if ready:
            self.wait_for(ready)
        return float(self.eval("performance.now()"))

    def eval(self, expression: str) -> Any:
        """Evaluate JavaScript in the page (promises awaited) and return its JSON value."""
        result = self.send("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                "returnByValue": True})
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise BrowserError(f"{expression[:80]!r}: {details.get('exception', {}).get('description') or details['text']}")
        return result["result"].get("value")

    def wait_for(self, condition: str, timeout_s: float | None = None) -> None:
        """Poll the JS expression ``condition`` until it is truthy."""
        deadline = time.monotonic() + (timeout_s or self.timeout_s)
        while not self.eval(f"!!({condition})"):
            if time.monotonic() > deadline:
                raise BrowserError(f"timed out waiting for {condition!r}; page errors: {self.errors}")
            time.sleep(0.02)

    def click(self, selector: str) -> None:
        """Click the centre of the first element matching ``selector`` with real mouse events."""
        box = self.eval(f"""(() => {{ const e = document.querySelector({json.dumps(selector)});
            if (!e) return null; e.scrollIntoView({{block: "center"}});
            const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }})()""")
        if box is None:
            raise BrowserError(f"nothing matches {selector!r}")
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", {"type": kind, "x": box[0], "y": box[1], "button": "left",
                                                   "clickCount": 1})

    def select(self, selector: str, value: str) -> None:
        """Choose ``value`` in a ``<select>`` as a user would (the change event fires)."""
        found = self.eval(f"""(() => {{ const e = document.querySelector({json.dumps(selector)});
            if (!e || ![...e.options].some(o => o.value === {json.dumps(value)})) return false;
            e.value = {json.dumps(value)}; e.dispatchEvent(new Event("change", {{bubbles: true}})); return true; }})()""")
        if not found:
            raise BrowserError(f"no <select> {selector!r} with option {value!r}")

    def screenshot(self, path: Path, full_page: bool = False) -> Path:
        """Save a PNG of the viewport (or of the whole page)."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            params["captureBeyondViewport"] = True
            size = self.eval("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
            params["clip"] = {"x": 0, "y": 0, "width": size[0], "height": size[1], "scale": 1}
        Path(path).write_bytes(base64.b64decode(self.send("Page.captureScreenshot", params)["data"]))
        return Path(path)
