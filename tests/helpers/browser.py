"""Headless Chromium driven over the DevTools protocol: open a page, wait for text, screenshot.

Used by the UI test where Debian's ``chromium`` is installed. The flags keep Chromium off the
network (this machine has none) and away from any user profile.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--remote-debugging-port=0", "--window-size=1400,900", "about:blank"]


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def screenshot(url: str, out: Path, *, wait_for: list[str], dismiss: str = "Skip", timeout: float = 60) -> str:
    """Load ``url``, click away a dialog button labelled ``dismiss``, wait until the page text
    holds every string of ``wait_for``, save a PNG to ``out`` and return the page text."""
    return asyncio.run(asyncio.wait_for(_screenshot(url, out, wait_for, dismiss), timeout))


def probe(url: str, out: Path, steps: list[tuple[str | None, str]], *, dismiss: str = "Skip",
          timeout: float = 90) -> list:
    """Load ``url`` and play ``steps``: for each ``(action, until)`` pair of JavaScript
    expressions, run ``action`` (a click, or None) and poll ``until`` until it returns a truthy
    value (polling re-runs ``action``, as a user clicks again on a page still rendering).
    Returns each step's value; saves a PNG of the page after the last step to ``out``."""
    return asyncio.run(asyncio.wait_for(_probe(url, out, steps, dismiss), timeout))


async def _probe(url: str, out: Path, steps: list[tuple[str | None, str]], dismiss: str) -> list:
    async with _opened(url) as page:
        values = []
        for action, until in steps:
            value = None
            while not value:
                await asyncio.sleep(0.25)  # polling the page until it has rendered
                await page.evaluate(_click_button(dismiss))
                if action:
                    await page.evaluate(action)
                value = await page.evaluate(until)
            values.append(value)
        shot = await page.call("Page.captureScreenshot", format="png")
        out.write_bytes(base64.b64decode(shot["data"]))
        return values


def _click_button(label: str) -> str:
    """JavaScript clicking the first button whose text is ``label`` (nothing when none is shown)."""
    return ("(() => { const b = [...document.querySelectorAll('button')]"
            f".find(b => b.innerText.trim() === {json.dumps(label)}); if (b) b.click(); }})()")


@contextlib.asynccontextmanager
async def _opened(url: str):
    import websockets

    # chromium's helper processes may still write to the profile as it is removed
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        proc = subprocess.Popen([chromium(), f"--user-data-dir={profile}", *FLAGS],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            endpoint = await asyncio.to_thread(_devtools_endpoint, proc)
            async with websockets.connect(endpoint, max_size=None) as ws:
                page = _Page(ws)
                target = await page.call("Target.createTarget", url=url)
                attached = await page.call("Target.attachToTarget", targetId=target["targetId"], flatten=True)
                page.session = attached["sessionId"]
                yield page
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # chromium and its helpers (renderers, crashpad)
            except ProcessLookupError:
                pass
            proc.wait()


async def _screenshot(url: str, out: Path, wait_for: list[str], dismiss: str) -> str:
    async with _opened(url) as page:
        text = ""
        while not all(s in text for s in wait_for):
            await asyncio.sleep(0.25)  # polling the page until it has rendered
            await page.evaluate(_click_button(dismiss))
            text = await page.evaluate("document.body ? document.body.innerText : ''") or ""
        shot = await page.call("Page.captureScreenshot", format="png")
        out.write_bytes(base64.b64decode(shot["data"]))
        return text


def _devtools_endpoint(proc: subprocess.Popen) -> str:
    for line in proc.stderr:
        found = re.search(r"DevTools listening on (ws://\S+)", line)
        if found:
            return found.group(1)
    raise RuntimeError(f"chromium exited with {proc.wait()} before opening DevTools")


class _Page:
    def __init__(self, ws) -> None:
        self.ws, self.session, self._id = ws, None, 0

    async def call(self, method: str, **params):
        self._id += 1
        message = {"id": self._id, "method": method, "params": params}
        if self.session:
            message["sessionId"] = self.session
        await self.ws.send(json.dumps(message))
        while True:
            reply = json.loads(await self.ws.recv())
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    async def evaluate(self, expression: str):
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")
