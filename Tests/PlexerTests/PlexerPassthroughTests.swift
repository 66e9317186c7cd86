import FakePushGateways
import Foundation
import NotifyTestSupport
import Plexer
import Testing

@Suite("Plexer WebSocket passthrough channels", .timeLimit(.minutes(2)))
struct PlexerPassthroughTests {
    static func route(
        _ upstream: UpstreamWebSocketService, channel: String = "live", path: String = "/live",
        secret: String = UpstreamWebSocketService.secret, timeoutMs: Int = 5_000, maxResponseBytes: Int = 1 << 20
    ) -> UpstreamRoute {
        UpstreamRoute(
            channel: channel, kind: .websocket, url: URL(string: "ws://127.0.0.1:\(upstream.port)\(path)")!,
            timeoutMs: timeoutMs, maxResponseBytes: maxResponseBytes, identity: .signed, secret: secret)
    }

    @Test("messages are relayed both ways over one upstream socket that carries the user's signed identity")
    func relaysBothWays() async throws {
        let upstream = try await UpstreamWebSocketService()
        try await withPlexer(routes: [Self.route(upstream)]) { plexer in
            let ws = try await plexer.connected("alice")
            try await ws.send(json: ["ch": "live", "id": 1, "data": ["hello": 1]])
            let opened = try await upstream.next("open")
            #expect(opened["user"] as? String == "alice" && opened["path"] as? String == "/live")
            #expect(try await ws.receive()["ok"] as? Bool == true, "the reply says the message went upstream")
            let echo = try await ws.receive()
            #expect(echo["ch"] as? String == "live" && echo["ev"] as? String == "message")
            let data = try #require(echo["data"] as? [String: Any], "JSON from the upstream arrives as data")
            #expect((data["echo"] as? [String: Any])?["hello"] as? Int == 1 && data["user"] as? String == "alice")

            // Text that is not JSON, bytes, and a fragmented message, each way.
            try await ws.send(json: ["ch": "live", "text": "plain words"])
            #expect(((try await ws.receive())["data"] as? [String: Any])?["echo"] as? String == "plain words")
            try await ws.send(json: ["ch": "live", "data": ["cmd": "text", "text": "not { json"]])
            #expect(try await ws.receive()["text"] as? String == "not { json")
            try await ws.send(json: ["ch": "live", "binary": Data([1, 2, 3]).base64EncodedString()])
            #expect(try await ws.receive()["binary"] as? String == Data([3, 2, 1]).base64EncodedString())
            try await ws.send(json: ["ch": "live", "data": ["cmd": "fragmented", "parts": ["{\"a\":", "[1,", "2]}"]]])
            #expect(((try await ws.receive())["data"] as? [String: Any])?["a"] as? [Int] == [1, 2])

            // One socket for all of it; it closes with the client's.
            _ = try await ws.run(["op": "close"])
            #expect(try await upstream.next("closed")["code"] as? Int == 1001)
        }
    }

    @Test("an upstream that closes is an event with its code, and the next message opens a new socket")
    func upstreamCloseAndReopen() async throws {
        let upstream = try await UpstreamWebSocketService()
        try await withPlexer(routes: [Self.route(upstream)]) { plexer in
            let ws = try await plexer.connected("alice")
            try await ws.send(json: ["ch": "live", "data": ["cmd": "close", "code": 4321, "reason": "bye"]])
            _ = try await upstream.next("open")
            let closed = try await ws.receive()
            #expect(closed["ev"] as? String == "closed" && closed["code"] as? Int == 4321)
            #expect(closed["reason"] as? String == "bye")
            #expect(try await upstream.next("closed")["code"] as? Int == 4321)

            try await ws.send(json: ["ch": "live", "id": "again", "data": "x"])
            _ = try await upstream.next("open")
            #expect(try await ws.receive()["id"] as? String == "again")
            #expect(((try await ws.receive())["data"] as? [String: Any])?["echo"] as? String == "x")

            // The client closes the channel itself.
            try await ws.send(json: ["ch": "live", "op": "close", "id": 9])
            #expect(try await ws.receive()["ok"] as? Bool == true)
            #expect(try await upstream.next("closed")["code"] as? Int == 1000)
            try await ws.send(json: ["ch": "live", "op": "open", "id": 10])
            #expect(((try await ws.receive())["error"] as? [String: Any])?["code"] as? String == "unknown_op")
        }
    }

    @Test("a drain closes the clients' upstream sockets with theirs: going away (1001) on both sides")
    func drainClosesUpstreams() async throws {
        let upstream = try await UpstreamWebSocketService()
        try await withPlexer(routes: [Self.route(upstream)]) { plexer in
            let ws = try await plexer.connected("alice")
            try await ws.send(json: ["ch": "live", "id": 1, "data": "x"])
            _ = try await upstream.next("open")
            #expect(try await ws.receive()["ok"] as? Bool == true)
            #expect(((try await ws.receive())["data"] as? [String: Any])?["echo"] as? String == "x")
            await plexer.shutdown()
            #expect(try await ws.receive()["ev"] as? String == "reconnect")
            #expect(try await ws.closeReceived().code == 1001)
            #expect(try await upstream.next("closed")["code"] as? Int == 1001, "no upstream socket outlives a drain")
        }
    }

    @Test("wss: the upstream's certificate and name are verified, trusting plexer.upstreamCaFile; others are refused")
    func secureUpstream() async throws {
        // The certificate names localhost only, so reaching 127.0.0.1 by its address must fail the name check.
        let authority = try TestCertificateAuthority(addressToo: false)
        defer { authority.remove() }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("notify-wss-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let certificate = folder.appendingPathComponent("server.pem")
        let key = folder.appendingPathComponent("server-key.pem")
        try authority.serverCertificatePEM.write(to: certificate, atomically: true, encoding: .utf8)
        try authority.serverKeyPEM.write(to: key, atomically: true, encoding: .utf8)
        let upstream = try await UpstreamWebSocketService(tls: (certificate.path, key.path))
        func route(_ channel: String, _ host: String) -> UpstreamRoute {
            UpstreamRoute(
                channel: channel, kind: .websocket, url: URL(string: "wss://\(host):\(upstream.port)/\(channel)")!,
                identity: .signed, secret: UpstreamWebSocketService.secret)
        }
        @Sendable func refused(_ ws: WebSocketDriver, _ channel: String) async throws {
            try await ws.send(json: ["ch": channel, "id": channel, "data": "x"])
            let answer = try await ws.receive()
            #expect(answer["id"] as? String == channel, "\(answer)")
            #expect((answer["error"] as? [String: Any])?["code"] as? String == "upstream_unavailable", "\(answer)")
        }
        let routes = [route("live", "localhost"), route("byaddress", "127.0.0.1")]
        try await withPlexer(routes: routes, upstreamCaFile: authority.caFile) { plexer in
            let ws = try await plexer.connected("alice")
            try await refused(ws, "byaddress")
            try await ws.send(json: ["ch": "live", "id": 1, "data": "over TLS"])
            let opened = try await upstream.next("open")
            #expect(opened["path"] as? String == "/live", "the refused handshake never reached the upstream")
            #expect(opened["user"] as? String == "alice")
            #expect(try await ws.receive()["ok"] as? Bool == true)
            #expect(((try await ws.receive())["data"] as? [String: Any])?["echo"] as? String == "over TLS")
        }
        // Without the authority, the system's trust store does not know the certificate.
        try await withPlexer(routes: routes) { plexer in
            try await refused(try await plexer.connected("alice"), "live")
        }
    }

    @Test("a refused, unreachable or hanging upstream gives upstream_unavailable; a wrong secret is refused upstream")
    func failingUpstreams() async throws {
        let upstream = try await UpstreamWebSocketService()
        let refusing = try RefusingPort()
        let routes = [
            Self.route(upstream, channel: "refused", path: "/refuse"),
            Self.route(upstream, channel: "forged", secret: String(repeating: "f", count: 40)),
            Self.route(upstream, channel: "hangs", path: "/hang", timeoutMs: 300),
            UpstreamRoute(
                channel: "down", kind: .websocket, url: URL(string: "ws://127.0.0.1:\(refusing.port)/")!,
                identity: .signed, secret: UpstreamWebSocketService.secret),
        ]
        try await withPlexer(routes: routes) { plexer in
            let ws = try await plexer.connected("alice")
            for (channel, words) in [
                ("refused", "refused the WebSocket handshake"), ("forged", "refused the WebSocket handshake"),
                ("hangs", "did not answer within 300 ms"), ("down", "is unreachable"),
            ] {
                try await ws.send(json: ["ch": channel, "id": channel, "data": 1])
                try await ws.send(json: ["ch": channel, "id": channel + "-2", "data": 2])
                for id in [channel, channel + "-2"] {
                    let answer = try await ws.receive()
                    let error = try #require(answer["error"] as? [String: Any], "\(answer)")
                    #expect(answer["id"] as? String == id, "every waiting message gets its error")
                    #expect(error["code"] as? String == "upstream_unavailable")
                    #expect((error["message"] as? String)?.contains(words) == true, "\(error)")
                }
            }
            // Both refusals were the upstream's own (a second message may have tried again: a set).
            var reasons = Set<String>()
            while reasons.count < 2 { reasons.insert(try await upstream.next("refused")["why"] as? String ?? "") }
            #expect(reasons == ["path", "signature"])
        }
    }

    @Test("bad messages are refused with bad_frame or invalid; an upstream message over the limit closes with 1009")
    func badMessagesAndLimits() async throws {
        let upstream = try await UpstreamWebSocketService()
        try await withPlexer(routes: [Self.route(upstream, maxResponseBytes: 1_000)]) { plexer in
            let ws = try await plexer.connected("alice")
            let messages: [[String: Any]] = [
                ["ch": "live", "data": 1, "text": "two"], ["ch": "live"], ["ch": "live", "binary": "***"],
                ["ch": "live", "data": 1, "path": "/x"],
            ]
            for (index, message) in messages.enumerated() {
                var message = message
                message["id"] = index
                try await ws.send(json: message)
                let answer = try await ws.receive()
                #expect(answer["id"] as? Int == index)
                let code = (answer["error"] as? [String: Any])?["code"] as? String
                #expect(code == "bad_frame" || code == "invalid", "\(answer)")
            }
            try await ws.send(json: ["ch": "live", "data": ["cmd": "big", "size": 5_000]])
            let closed = try await ws.receive()
            #expect(closed["ev"] as? String == "closed" && closed["code"] as? Int == 1009, "\(closed)")
            #expect(try await upstream.next("closed")["code"] as? Int == 1009)
        }
    }

    @Test("closing a channel while its handshake runs answers the waiting message and frees the socket's place")
    func closeDuringHandshake() async throws {
        let upstream = try await UpstreamWebSocketService()
        let route = UpstreamRoute(
            channel: "live", kind: .websocket, url: URL(string: "ws://127.0.0.1:\(upstream.port)/hang")!,
            timeoutMs: 60_000, maxInFlight: 1, identity: .signed, secret: UpstreamWebSocketService.secret)
        try await withPlexer(routes: [route]) { plexer in
            let ws = try await plexer.connected("alice")
            for round in 0..<3 {
                try await ws.send(json: ["ch": "live", "id": "m\(round)", "data": round])
                try await ws.send(json: ["ch": "live", "id": "c\(round)", "op": "close"])
                let error = try await ws.receive()
                #expect(error["id"] as? String == "m\(round)")
                let message = ((error["error"] as? [String: Any])?["message"] as? String) ?? ""
                #expect(message.contains("closed before its socket opened"), "the place was free again: \(message)")
                #expect(try await ws.receive()["id"] as? String == "c\(round)")
            }
        }
    }
}
