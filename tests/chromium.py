"""Headless Chromium through chromedriver's W3C WebDriver API: plain HTTP and JSON, standard library.

Used by tests/test_view.py and tools/view_bench.py. Debian: ``apt-get install chromium chromium-driver``.
"""

from __future__ import annotations

import base64
import json
import logging
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

log = logging.getLogger(__name__)

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C key of an element reference


def find() -> tuple[str, str] | None:
    """(browser, chromedriver) when both are installed."""
    driver = shutil.which("chromedriver")
    # Debian's /usr/bin/chromium is a shell wrapper; the binary behind it starts faster and quieter
    real = Path("/usr/lib/chromium/chromium")
    browser = (
        str(real)
        if real.is_file()
        else (shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome"))
    )
    return (browser, driver) if browser and driver else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WebDriverError(RuntimeError):
    pass


class Browser:
    """One headless browser window. Use as a context manager."""

    def __init__(self, browser: str, driver: str, width: int = 1280, height: int = 900, timeout: float = 20.0):
        port = _free_port()
        self.timeout = timeout
        self.proc = subprocess.Popen([driver, f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 15
        while True:
            try:
                if self._call("GET", "/status").get("ready"):
                    break
            except (OSError, WebDriverError):
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.proc.kill()
                raise WebDriverError("chromedriver did not start")
            time.sleep(0.1)
        args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--enable-precise-memory-info",
            "--mute-audio",
            f"--window-size={width},{height}",
        ]
        caps = {
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "pageLoadStrategy": "normal",
                    "goog:chromeOptions": {"binary": browser, "args": args},
                }
            }
        }
        try:
            self.session = self._call("POST", "/session", caps)["sessionId"]
        except Exception:
            self.proc.kill()
            raise

    def _call(self, method: str, path: str, body: dict | None = None):
        data = json.dumps(body).encode() if body is not None else (b"{}" if method == "POST" else None)
        req = urllib.request.Request(
            self.base + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                value = json.loads(resp.read() or b"{}").get("value")
        except urllib.error.HTTPError as err:
            value = json.loads(err.read() or b"{}").get("value") or {}
            raise WebDriverError(f"{value.get('error')}: {str(value.get('message'))[:300]}") from None
        return value

    def _s(self, method: str, path: str, body: dict | None = None):
        return self._call(method, f"/session/{self.session}{path}", body)

    # the few commands the tests need --------------------------------------------------------
    def get(self, url: str) -> None:
        self._s("POST", "/url", {"url": url})

    def js(self, script: str, *args):
        """Run ``script`` (a function body: ``return …``) in the page."""
        return self._s("POST", "/execute/sync", {"script": script, "args": list(args)})

    def find(self, css: str) -> list[dict]:
        return self._s("POST", "/elements", {"using": "css selector", "value": css})

    def click(self, element: dict) -> None:
        self._s("POST", f"/element/{element[ELEMENT]}/click")

    def text(self, element: dict) -> str:
        return self._s("GET", f"/element/{element[ELEMENT]}/text")

    def screenshot(self) -> bytes:
        return base64.b64decode(self._s("GET", "/screenshot"))

    def cdp(self, cmd: str, params: dict | None = None):
        """A DevTools protocol command (chromedriver's passthrough)."""
        return self._s("POST", "/goog/cdp/execute", {"cmd": cmd, "params": params or {}})

    def wait(self, condition: str, timeout: float | None = None):
        """Poll the JS expression ``condition`` until it is truthy; returns its value."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            value = self.js(f"return ({condition});")
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {timeout or self.timeout} s for: {condition}")
            time.sleep(0.05)

    def quit(self) -> None:
        try:
            self._s("DELETE", "")
        except (OSError, WebDriverError):
            pass
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc) -> None:
        self.quit()
