"""An independent WebSocket client (Python `websockets`) driven line by line by the Plexer tests.

Each line on stdin is a JSON command; each answer is one JSON line on stdout. The client is deliberately not ours:
it checks our handshake, framing, ping/pong, fragmentation and close codes against another implementation.
"""

import asyncio
import base64
import json
import os
import socket
import sys

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus


async def main():
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    ws = None

    def answer(value):
        sys.stdout.write(json.dumps(value) + "\n")
        sys.stdout.flush()

    def closed():
        return {"closed": True, "code": ws.close_code, "reason": ws.close_reason}

    while True:
        line = await reader.readline()
        if not line:
            return
        command = json.loads(line)
        op = command["op"]
        try:
            if op == "connect":
                try:
                    sock = None
                    if command.get("rcvbuf"):
                        # A small receive buffer set before connecting (autotuning would grow it to 32 MB here),
                        # so a client that stops reading is seen as one by the server.
                        host, port = command["url"].split("/")[2].split(":")
                        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, command["rcvbuf"])
                        sock.connect((host, int(port)))
                    ws = await connect(
                        command["url"],
                        sock=sock,
                        subprotocols=command.get("subprotocols"),
                        additional_headers=command.get("headers"),
                        max_size=None,
                        max_queue=command.get("max_queue", 16),
                        ping_interval=None,
                        open_timeout=10,
                        close_timeout=5,
                    )
                    answer({"ok": True, "subprotocol": ws.subprotocol})
                except InvalidStatus as error:
                    response = error.response
                    answer({
                        "ok": False,
                        "status": response.status_code,
                        "content_type": response.headers.get("Content-Type"),
                        "body": response.body.decode("utf-8", "replace"),
                    })
            elif op == "raw_connect":
                # A hand-made client: it does the handshake, then sends only what it is told (no pongs, frames
                # masked or not), to see how the server treats a peer that breaks the rules.
                host, port = command["host"], command["port"]
                raw = await asyncio.open_connection(host, port)
                key = base64.b64encode(os.urandom(16)).decode()
                raw[1].write(
                    f"GET {command['path']} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: notify.v1\r\n\r\n"
                    .encode())
                await raw[1].drain()
                status = (await asyncio.wait_for(raw[0].readline(), 10)).decode().strip()
                while (await asyncio.wait_for(raw[0].readline(), 10)) not in (b"\r\n", b"\n"):
                    pass
                answer({"ok": True, "status": status})
            elif op == "raw_send":
                # One frame: opcode, payload (hex), masked or not.
                payload = bytes.fromhex(command.get("hex", ""))
                header = bytes([0x80 | command["opcode"]])
                mask = command.get("masked", True)
                header += bytes([(0x80 if mask else 0) | len(payload)])
                if mask:
                    key = os.urandom(4)
                    payload = key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))
                raw[1].write(header + payload)
                await raw[1].drain()
                answer({"ok": True})
            elif op == "raw_wait_close":
                # Frames until the server's close frame (pings are not answered); its code, or why none came.
                try:
                    while True:
                        head = await asyncio.wait_for(raw[0].readexactly(2), command.get("timeout", 10))
                        length = head[1] & 0x7F
                        if length == 126:
                            length = int.from_bytes(await raw[0].readexactly(2), "big")
                        elif length == 127:
                            length = int.from_bytes(await raw[0].readexactly(8), "big")
                        payload = await raw[0].readexactly(length)
                        if head[0] & 0x0F == 8:
                            code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
                            answer({"closed": True, "code": code, "reason": payload[2:].decode("utf-8", "replace")})
                            break
                except asyncio.TimeoutError:
                    answer({"timeout": True})
                except asyncio.IncompleteReadError:
                    answer({"closed": True, "code": None, "reason": "connection ended without a close frame"})
            elif op == "sse_open":
                # A plain Server-Sent Events reader (GET /v1/stream), for events that must reach SSE too.
                host, port = command["host"], command["port"]
                sse = await asyncio.open_connection(host, port)
                sse[1].write(
                    f"GET /v1/stream HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {command['token']}\r\n"
                    "Accept: text/event-stream\r\n\r\n".encode())
                await sse[1].drain()
                status = await asyncio.wait_for(sse[0].readline(), 10)
                while (await asyncio.wait_for(sse[0].readline(), 10)) not in (b"\r\n", b"\n"):
                    pass
                answer({"ok": True, "status": status.decode().strip()})
            elif op == "sse_next":
                # The next line that starts with `id: ` (chunked framing lines are skipped).
                try:
                    while True:
                        line = (await asyncio.wait_for(sse[0].readline(), command.get("timeout", 10))).decode()
                        if line.startswith("id: "):
                            answer({"ok": True, "id": line[4:].strip()})
                            break
                        if not line:
                            answer({"closed": True})
                            break
                except asyncio.TimeoutError:
                    answer({"timeout": True})
            elif op == "send":
                await ws.send(command["text"])
                answer({"ok": True})
            elif op == "send_bytes":
                # Raw bytes in a text frame (invalid UTF-8 on purpose), or a binary frame.
                data = bytes.fromhex(command["hex"])
                await ws.send(data, text=command.get("text", False))
                answer({"ok": True})
            elif op == "send_many":
                # Back to back, in one go: no round trip of ours between them.
                for text in command["texts"]:
                    await ws.send(text)
                answer({"ok": True})
            elif op == "send_size":
                # A large text message made here, not sent through the pipe.
                await ws.send("x" * command["size"])
                answer({"ok": True})
            elif op == "send_fragments":
                await ws.send(iter(command["parts"]))
                answer({"ok": True})
            elif op == "recv":
                try:
                    text = await asyncio.wait_for(ws.recv(), command.get("timeout", 10))
                    answer({"ok": True, "text": text})
                except asyncio.TimeoutError:
                    answer({"timeout": True})
                except ConnectionClosed:
                    answer(closed())
            elif op == "recv_many":
                # Many messages in one answer (a round trip per message would be what the test measures).
                texts = []
                try:
                    for _ in range(command["count"]):
                        texts.append(await asyncio.wait_for(ws.recv(), command.get("timeout", 10)))
                    answer({"ok": True, "texts": texts})
                except asyncio.TimeoutError:
                    answer({"timeout": True, "texts": texts})
                except ConnectionClosed:
                    answer(dict(closed(), texts=texts))
            elif op == "ping":
                waiter = await ws.ping()
                latency = await asyncio.wait_for(waiter, 10)
                answer({"ok": True, "latency": latency})
            elif op == "close":
                await ws.close(command.get("code", 1000), command.get("reason", ""))
                answer(closed())
            elif op == "wait_closed":
                try:
                    await asyncio.wait_for(ws.wait_closed(), command.get("timeout", 10))
                    answer(closed())
                except asyncio.TimeoutError:
                    answer({"timeout": True})
            else:
                answer({"error": f"unknown op {op}"})
        except ConnectionClosed:
            answer(closed())
        except Exception as error:  # reported to the test, which fails with it
            answer({"error": f"{type(error).__name__}: {error}"})


asyncio.run(main())
