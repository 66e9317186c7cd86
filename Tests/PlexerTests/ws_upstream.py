"""A WebSocket upstream for the Plexer's passthrough tests, on Python's `websockets` (not our code).

Usage: ws_upstream.py <secret> [<certificate.pem> <key.pem>] (TLS with the second and third); it runs until its
stdin closes. Prints {"port": N}, then one JSON line per thing that happened:
{"ev": "open", "user": …, "path": …, "token": …}, {"ev": "refused", "why": …}, {"ev": "closed", "code": …}.

The handshake is checked as an upstream of a `signed` route must check it: X-Notify-User, X-Notify-Timestamp
(recent) and X-Notify-Signature (HMAC-SHA256 over the documented fields, compared in constant time); a bad one is
answered 403. Path /refuse is always refused, /hang never answers, and a `jwt` route's handshake (Authorization)
is accepted as is. Messages: a JSON object with "cmd" makes the upstream do something (close, text, binary, big,
fragmented, flood); anything else is echoed as {"echo": <the message, parsed when JSON>, "user": …}.
"""

import asyncio
import base64
import hashlib
import hmac
import http
import json
import ssl
import sys
import time

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed


def emit(value):
    sys.stdout.write(json.dumps(value) + "\n")
    sys.stdout.flush()


async def main():
    secret = sys.argv[1].encode()

    def check(connection, request):
        path = request.path
        if path == "/refuse":
            emit({"ev": "refused", "why": "path"})
            return connection.respond(http.HTTPStatus.FORBIDDEN, "refused\n")
        headers = request.headers
        if headers.get("Authorization", "").startswith("Bearer "):
            return None
        user = headers.get("X-Notify-User", "")
        timestamp = headers.get("X-Notify-Timestamp", "0")
        signature = headers.get("X-Notify-Signature", "")
        body_hash = hashlib.sha256(b"").hexdigest()
        message = f"v1\n{timestamp}\n{user}\nGET\n{path}\n{body_hash}".encode()
        expected = "v1=" + hmac.new(secret, message, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature) or abs(time.time() - int(timestamp)) > 60:
            emit({"ev": "refused", "why": "signature"})
            return connection.respond(http.HTTPStatus.FORBIDDEN, "bad signature\n")
        return None

    async def process_request(connection, request):
        if request.path == "/hang":
            await asyncio.sleep(3600)
        return check(connection, request)

    async def handler(ws):
        headers = ws.request.headers
        user = headers.get("X-Notify-User")
        token = headers.get("Authorization", "")[len("Bearer "):] or None
        emit({"ev": "open", "user": user, "path": ws.request.path, "token": token})
        try:
            async for message in ws:
                if isinstance(message, bytes):
                    await ws.send(message[::-1])
                    continue
                try:
                    parsed = json.loads(message)
                except ValueError:
                    parsed = message
                command = parsed.get("cmd") if isinstance(parsed, dict) else None
                if command == "close":
                    await ws.close(parsed["code"], parsed.get("reason", ""))
                elif command == "text":
                    await ws.send(parsed["text"])
                elif command == "binary":
                    await ws.send(base64.b64decode(parsed["b64"]))
                elif command == "big":
                    await ws.send("x" * parsed["size"])
                elif command == "fragmented":
                    await ws.send(iter(parsed["parts"]))
                elif command == "flood_binary":
                    for index in range(parsed["count"]):
                        await ws.send(index.to_bytes(3, "big"))
                    emit({"ev": "flooded"})
                elif command == "flood":
                    for index in range(parsed["count"]):
                        await ws.send(json.dumps({"n": index, "pad": "x" * parsed["size"]}))
                    emit({"ev": "flooded"})
                else:
                    await ws.send(json.dumps({"echo": parsed, "user": user}))
        except ConnectionClosed:
            pass  # the Plexer closed the socket: what the tests make it do, reported below, not a traceback
        finally:
            emit({"ev": "closed", "code": ws.close_code})

    tls = None
    if len(sys.argv) > 3:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(sys.argv[2], sys.argv[3])
    async with serve(handler, "127.0.0.1", 0, process_request=process_request, max_size=None, ssl=tls) as server:
        emit({"port": server.sockets[0].getsockname()[1]})
        # Runs until the test closes stdin (or exits): never outlives it.
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while await reader.readline():
            pass


asyncio.run(main())
