"""Drives headless Chromium over the DevTools protocol for the Plexer's browser test, one JSON command per line.

Commands: {"op": "open", "chromium": PATH, "url": URL} starts the browser and loads the page; {"op": "wait",
"expr": JS, "timeout": S} polls the page until the expression is truthy and answers its value (JSON);
{"op": "eval", "expr": JS} answers the value at once.
"""

import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import urllib.request

from websockets.asyncio.client import connect


class Page:
    def __init__(self, ws):
        self.ws = ws
        self.next_id = 0

    async def call(self, method, params=None):
        self.next_id += 1
        ident = self.next_id
        await self.ws.send(json.dumps({"id": ident, "method": method, "params": params or {}}))
        while True:
            message = json.loads(await self.ws.recv())
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    async def value(self, expression):
        result = await self.call(
            "Runtime.evaluate", {"expression": f"JSON.stringify({expression})", "returnByValue": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails'].get('text')}")
        text = result["result"].get("value")
        return None if text is None else json.loads(text)


async def main():
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    browser = None
    profile = tempfile.mkdtemp(prefix="notify-chromium-")
    page = None

    def answer(value):
        sys.stdout.write(json.dumps(value) + "\n")
        sys.stdout.flush()

    try:
        while True:
            line = await reader.readline()
            if not line:
                return
            command = json.loads(line)
            try:
                if command["op"] == "open":
                    browser = subprocess.Popen(
                        [command["chromium"], "--headless=new", "--no-sandbox", "--disable-gpu",
                         "--remote-debugging-port=0", f"--user-data-dir={profile}", "--no-first-run",
                         "--allow-file-access-from-files", "about:blank"],
                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                    port = None
                    for output in browser.stderr:
                        if "DevTools listening on ws://" in output:
                            port = output.split("ws://", 1)[1].split("/", 1)[0].split(":")[1]
                            break
                    if port is None:
                        raise RuntimeError("chromium did not start its DevTools endpoint")
                    # Chromium goes on logging to stderr: a pipe nobody reads fills up and stalls the browser.
                    threading.Thread(target=browser.stderr.read, daemon=True).start()
                    targets = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list").read())
                    target = next(t for t in targets if t["type"] == "page")
                    page = Page(await connect(target["webSocketDebuggerUrl"], max_size=None))
                    await page.call("Page.navigate", {"url": command["url"]})
                    answer({"ok": True})
                elif command["op"] == "wait":
                    deadline = loop.time() + command.get("timeout", 10)
                    value = None
                    while loop.time() < deadline:
                        value = await page.value(command["expr"])
                        if value:
                            break
                        await asyncio.sleep(0.05)  # polling the page's state: it has no event to await
                    answer({"ok": bool(value), "value": value})
                elif command["op"] == "eval":
                    answer({"ok": True, "value": await page.value(command["expr"])})
                else:
                    answer({"error": f"unknown op {command['op']}"})
            except Exception as error:
                answer({"error": f"{type(error).__name__}: {error}"})
    finally:
        if browser is not None:
            browser.kill()
            browser.wait()
        shutil.rmtree(profile, ignore_errors=True)


asyncio.run(main())
