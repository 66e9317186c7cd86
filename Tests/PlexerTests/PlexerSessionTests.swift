import Foundation
import Plexer
import Testing

@Suite("Plexer sockets (driven by Python websockets)", .timeLimit(.minutes(2)))
struct PlexerSessionTests {
    @Test("a bearer handshake gets ready, resumes, receives live events once, and acks them")
    func liveAndAck() async throws {
        try await withPlexer { plexer in
            let missed = try await plexer.notify("alice")
            let token = try await plexer.token(for: "alice")
            let ws = try WebSocketDriver()
            let connected = try await ws.connect(plexer.url, headers: ["Authorization": "Bearer \(token)"])
            #expect(connected["subprotocol"] as? String == "notify.v1")
            let ready = try await ws.receive()
            #expect(ready["ch"] as? String == "sys" && ready["ev"] as? String == "ready")
            #expect(ready["user"] as? String == "alice")

            // Resume from before the missed event: it is replayed, then the reply.
            try await ws.send(json: ["ch": "notify", "op": "resume", "id": 1, "after": "0-1"])
            let replayed = try await ws.receive()
            #expect((replayed["event"] as? [String: Any])?["id"] as? String == missed)
            let reply = try await ws.receive()
            #expect(reply["id"] as? Int == 1 && reply["ok"] as? Bool == true && reply["replayed"] as? Int == 1)

            let live = try await plexer.notify("alice")
            let event = try await ws.receive()
            #expect(event["ev"] as? String == "notification")
            #expect((event["event"] as? [String: Any])?["id"] as? String == live)

            try await ws.send(json: ["ch": "notify", "op": "ack", "id": "a", "up_to": live])
            let ack = try await ws.receive()
            #expect(ack["id"] as? String == "a" && ack["cancelled"] as? Int == 2, "both pushes cancelled: \(ack)")
            _ = try await ws.run(["op": "close", "code": 1000])
        }
    }

    @Test("handshakes the Plexer refuses get a problem answer: wrong path, no subprotocol")
    func refusedHandshakes() async throws {
        try await withPlexer { plexer in
            let ws = try WebSocketDriver()
            let wrongPath = try await ws.connect("ws://127.0.0.1:\(plexer.port)/other")
            #expect(wrongPath["status"] as? Int == 404)
            #expect(wrongPath["content_type"] as? String == "application/problem+json")
            let noProtocol = try await ws.connect(plexer.url, subprotocols: nil)
            #expect(noProtocol["status"] as? Int == 400)
            #expect((noProtocol["body"] as? String)?.contains("notify.v1") == true)
        }
    }

    @Test("authentication: a bad token closes with 4001, no auth frame in time with 4002, an auth frame works")
    func authentication() async throws {
        // The timeout also bounds the wait for the upgrade request: 300 ms closed a loaded machine's handshake.
        try await withPlexer(configuration: .init(authTimeoutMs: 1_500)) { plexer in
            let silent = try WebSocketDriver()
            _ = try await silent.connect(plexer.url)
            #expect(try await silent.closeReceived().code == 4002)
        }
        try await withPlexer { plexer in
            let bad = try WebSocketDriver()
            _ = try await bad.connect(plexer.url, headers: ["Authorization": "Bearer not.a.token"])
            #expect(try await bad.closeReceived().code == 4001)
            let malformed = try WebSocketDriver()
            _ = try await malformed.connect(plexer.url, headers: ["Authorization": "Basic YWxpY2U6eA=="])
            #expect(try await malformed.closeReceived().code == 4001)

            let framed = try WebSocketDriver()
            _ = try await framed.connect(plexer.url)
            try await framed.send(json: ["ch": "auth", "id": 7, "token": try await plexer.token(for: "bob")])
            let ready = try await framed.receive()
            #expect(ready["ev"] as? String == "ready" && ready["user"] as? String == "bob")
            let reply = try await framed.receive()
            #expect(reply["id"] as? Int == 7 && reply["ok"] as? Bool == true)

            let early = try WebSocketDriver()
            _ = try await early.connect(plexer.url)
            try await early.send(json: ["ch": "notify", "op": "resume"])
            #expect(try await early.closeReceived().code == 4001, "a request before authenticating")
        }
    }

    @Test("malformed requests get error frames echoing the id; binary closes with 1003, bad UTF-8 with 1007")
    func badInput() async throws {
        try await withPlexer { plexer in
            let token = try await plexer.token(for: "alice")
            let ws = try WebSocketDriver()
            _ = try await ws.connect(plexer.url + "?access_token=\(token)")
            _ = try await ws.receive()
            try await ws.send("not json")
            #expect((try await ws.receive()["error"] as? [String: Any])?["code"] as? String == "bad_frame")
            try await ws.send(json: ["ch": "chat9", "id": 3])
            let unknown = try await ws.receive()
            #expect(unknown["id"] as? Int == 3 && unknown["ch"] as? String == "chat9")
            #expect((unknown["error"] as? [String: Any])?["code"] as? String == "unknown_channel")
            try await ws.send(json: ["ch": "notify", "op": "resume", "id": 4, "after": "yesterday"])
            #expect((try await ws.receive()["error"] as? [String: Any])?["code"] as? String == "invalid")
            try await ws.send(json: ["ch": "notify", "op": "fly", "id": 5])
            #expect((try await ws.receive()["error"] as? [String: Any])?["code"] as? String == "unknown_op")
            // Fragmented messages are reassembled.
            _ = try await ws.run(["op": "send_fragments", "parts": [#"{"ch":"notify","#, #""op":"fly","id":6}"#]])
            #expect(try await ws.receive()["id"] as? Int == 6)
            _ = try await ws.run(["op": "send_bytes", "hex": "0102", "text": false])
            #expect(try await ws.closeReceived().code == 1003)

            let utf8 = try WebSocketDriver()
            _ = try await utf8.connect(plexer.url + "?access_token=\(token)")
            _ = try await utf8.receive()
            _ = try await utf8.run(["op": "send_bytes", "hex": "7b22ff7d", "text": true])
            #expect(try await utf8.closeReceived().code == 1007)
        }
    }

    @Test("a message over the limit closes with 1009; ping is answered")
    func tooBig() async throws {
        try await withPlexer(configuration: .init(maxMessageBytes: 4_096)) { plexer in
            let ws = try await plexer.connected("alice")
            _ = try await ws.run(["op": "ping"])
            _ = try await ws.run(["op": "send_size", "size": 10 << 20])
            #expect(try await ws.closeReceived().code == 1009)
        }
    }

    @Test("graceful shutdown tells clients to reconnect with a jittered hint, then closes with 1001")
    func drain() async throws {
        try await withPlexer(configuration: .init(drainRetryMinMs: 700, drainRetryMaxMs: 900)) { plexer in
            let ws = try await plexer.connected("alice")
            await plexer.shutdown()
            let hint = try await ws.receive()
            #expect(hint["ev"] as? String == "reconnect")
            #expect((700...900).contains(hint["retry_ms"] as? Int ?? 0))
            #expect(try await ws.closeReceived().code == 1001)
        }
    }
}
