import Foundation
import NotifyCore
import Plexer
import RedisClient
import Testing

@Suite("Plexer sockets: tokens, limits, slow readers, Redis drops", .timeLimit(.minutes(2)))
struct PlexerLimitsTests {
    @Test("a socket lives as long as its token: a refresh moves the expiry, another user's is refused, then 4003")
    func tokenExpiry() async throws {
        try await withPlexer { plexer in
            let ws = try WebSocketDriver()
            _ = try await ws.connect(
                plexer.url + "?access_token=\(try await plexer.token(for: "alice", expiresIn: 600))")
            _ = try await ws.receive()
            try await ws.send(json: ["ch": "auth", "id": 1, "token": try await plexer.token(for: "bob", expiresIn: 60)])
            let refused = try await ws.receive()
            #expect((refused["error"] as? [String: Any])?["code"] as? String == "forbidden", "\(refused)")
            // The socket now lives as long as the new token: a few seconds instead of ten minutes.
            let short = try await plexer.token(for: "alice", expiresIn: 5)
            try await ws.send(json: ["ch": "auth", "id": 2, "token": short])
            let refreshed = try await ws.receive()
            let expiresAt = try #require(refreshed["expires_at"] as? Int)
            #expect(refreshed["ok"] as? Bool == true && abs(Double(expiresAt) - Date().timeIntervalSince1970 - 5) < 5)
            #expect(try await ws.closeReceived().code == 4003)
        }
    }

    @Test("over the request rate: rate_limited error frames with a retry hint, then 4005 when it goes on")
    func rateLimit() async throws {
        try await withPlexer(configuration: .init(requestsPerSecond: 1, requestBurst: 2)) { plexer in
            let ws = try await plexer.connected("alice")
            // Back to back: a burst of 2 passes, the next are refused, and the third refusal in a row closes.
            _ = try await ws.run([
                "op": "send_many", "texts": (0..<5).map { #"{"ch":"notify","op":"inbox","id":\#($0)}"# },
            ])
            // Everything until the close (the two inbox pages may still be on their way when it comes: replies
            // are not sent on a closing socket).
            var answers: [[String: Any]] = []
            var close: Int?
            while close == nil {
                let answer = try await ws.run(["op": "recv", "timeout": 10])
                if answer["closed"] as? Bool == true {
                    close = answer["code"] as? Int
                } else if let text = answer["text"] as? String {
                    answers.append(
                        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]))
                } else {
                    throw DriverFailure("the server did not close the socket")
                }
            }
            #expect(close == 4005)
            let passed = answers.filter { $0["ok"] as? Bool == true }.compactMap { $0["id"] as? Int }
            #expect(Set(passed).isSubset(of: [0, 1]), "\(answers)")
            let limited = answers.filter { ($0["error"] as? [String: Any])?["code"] as? String == "rate_limited" }
            #expect(limited.compactMap { $0["id"] as? Int }.sorted() == [2, 3], "\(answers)")
            #expect(limited.allSatisfy { (($0["error"] as? [String: Any])?["retry_ms"] as? Int ?? 0) > 0 })
        }
    }

    @Test("socket limits: a user's socket over its limit gets 4007, a socket over the process's limit 1013")
    func socketLimits() async throws {
        try await withPlexer(configuration: .init(maxSockets: 3, maxSocketsPerUser: 2)) { plexer in
            let first = try await plexer.connected("alice")
            let second = try await plexer.connected("alice")
            let third = try WebSocketDriver()
            _ = try await third.connect(plexer.url + "?access_token=\(try await plexer.token(for: "alice"))")
            #expect(try await third.closeReceived().code == 4007)
            // The refused socket gave its place back: bob takes the process's third.
            let bob = try await plexer.connected("bob")
            let fourth = try WebSocketDriver()
            _ = try await fourth.connect(plexer.url + "?access_token=\(try await plexer.token(for: "carol"))")
            #expect(try await fourth.closeReceived().code == 1013)
            // A closed socket frees both places.
            _ = try await first.run(["op": "close"])
            _ = try await bob.run(["op": "close"])
            let again = try await plexer.connected("alice")
            try await again.send(json: ["ch": "notify", "op": "resume", "id": 1])
            #expect(try await again.receive()["ok"] as? Bool == true)
            _ = second
        }
    }

    @Test("a reader that stops reading is closed with 4004 and resumes from its last event without loss")
    func slowReader() async throws {
        // A long close grace: the close frame waits behind the unread bytes, and the client reads them only after
        // the sends (a client that never reads again cannot learn the code; its connection just ends).
        try await withPlexer(
            configuration: .init(closeGraceMs: 30_000, stallTimeoutMs: 1_000), streamBufferEvents: 10_000
        ) { plexer in
            let token = try await plexer.token(for: "alice")
            let ws = try WebSocketDriver()
            _ = try await ws.connect(plexer.url + "?access_token=\(token)", maxQueue: 1, receiveBuffer: 4_096)
            _ = try await ws.receive()
            try await ws.send(json: ["ch": "notify", "op": "resume", "id": 1])
            _ = try await ws.receive()
            // About 12 MB the client does not read: more than the kernel (4 MB send buffer) and both libraries hold.
            let padding = String(repeating: "x", count: 3_900)
            var sent: [String] = []
            for index in 0..<3_000 {
                sent.append(
                    try await plexer.notify(
                        "alice", push: false, payload: .object(["n": .integer(Int64(index)), "p": .string(padding)])))
            }
            var received: [String] = []
            var close: Int?
            while close == nil {
                let answer = try await ws.run(["op": "recv", "timeout": 15])
                if answer["closed"] as? Bool == true {
                    close = answer["code"] as? Int
                } else if let text = answer["text"] as? String,
                    let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
                    let id = (object["event"] as? [String: Any])?["id"] as? String
                {
                    received.append(id)
                } else {
                    throw DriverFailure("neither an event nor a close after \(received.count) events: \(answer)")
                }
            }
            #expect(close == 4004)
            #expect(received.count < sent.count && received == Array(sent.prefix(received.count)))
            // It resumes from the last event it got and misses nothing.
            let again = try WebSocketDriver()
            _ = try await again.connect(plexer.url + "?access_token=\(token)")
            _ = try await again.receive()
            try await again.send(json: ["ch": "notify", "op": "resume", "id": 2, "after": received.last ?? "0-1"])
            var rest: [String] = []
            while true {
                let message = try await again.receive()
                if message["id"] as? Int == 2 { break }
                rest.append(try #require((message["event"] as? [String: Any])?["id"] as? String))
            }
            #expect(received + rest == sent)
        }
    }

    @Test("events published while the pub/sub connection is down arrive once, in order, after it reconnects")
    func pubSubDrop() async throws {
        try await withPlexer { plexer in
            let ws = try await plexer.connected("alice")
            try await ws.send(json: ["ch": "notify", "op": "resume", "id": 1])
            _ = try await ws.receive()
            #expect(try await plexer.client.send("CLIENT", "KILL", "TYPE", "pubsub").int == 1)
            var sent: [String] = []
            for _ in 0..<5 { sent.append(try await plexer.notify("alice", push: false)) }
            var received: [String] = []
            for _ in 0..<5 {
                received.append(try #require((try await ws.receive()["event"] as? [String: Any])?["id"] as? String))
            }
            #expect(received == sent)
            let live = try await plexer.notify("alice", push: false)
            #expect((try await ws.receive()["event"] as? [String: Any])?["id"] as? String == live, "nothing twice")
        }
    }

    @Test("a client that answers pings stays connected past the idle timeout")
    func pingsKeepAlive() async throws {
        try await withPlexer(configuration: .init(pingIntervalMs: 200, idleTimeoutMs: 600)) { plexer in
            let ws = try await plexer.connected("alice")
            // Three idle timeouts without a message: only the pongs keep it open.
            let answer = try await ws.run(["op": "recv", "timeout": 1.8])
            #expect(answer["timeout"] as? Bool == true, "still open: \(answer)")
        }
    }

    @Test("a client that answers no ping is closed as idle (4006)")
    func idleClose() async throws {
        try await withPlexer(configuration: .init(pingIntervalMs: 200, idleTimeoutMs: 600)) { plexer in
            let raw = try WebSocketDriver()
            let token = try await plexer.token(for: "alice")
            let opened = try await raw.run([
                "op": "raw_connect", "host": "127.0.0.1", "port": plexer.port, "path": "/ws?access_token=\(token)",
            ])
            #expect(opened["status"] as? String == "HTTP/1.1 101 Switching Protocols")
            let closed = try await raw.run(["op": "raw_wait_close", "timeout": 10])
            #expect(closed["code"] as? Int == 4006, "\(closed)")
        }
    }

    @Test("RFC 6455 from a hand-made client: unmasked frames and invalid close codes get 1002; a valid close is echoed")
    func protocolRules() async throws {
        try await withPlexer { plexer in
            let token = try await plexer.token(for: "alice")
            let path = "/ws?access_token=\(token)"
            for (frame, expected) in [
                (["opcode": 1, "hex": "7b7d", "masked": false] as [String: Any], 1002),  // an unmasked text frame
                (["opcode": 8, "hex": "03ec"], 1002),  // close with 1004, a reserved code
                (["opcode": 8, "hex": "0fa1"], 4001),  // close with 4001: a valid code, echoed
                (["opcode": 3, "hex": ""], 1002),  // a reserved opcode
            ] {
                let raw = try WebSocketDriver()
                _ = try await raw.run(["op": "raw_connect", "host": "127.0.0.1", "port": plexer.port, "path": path])
                _ = try await raw.run(["op": "raw_send"].merging(frame) { $1 })
                let closed = try await raw.run(["op": "raw_wait_close", "timeout": 10])
                #expect(closed["code"] as? Int == expected, "\(frame): \(closed)")
            }
        }
    }

    @Test("a close the client starts is echoed with its code")
    func clientClose() async throws {
        try await withPlexer { plexer in
            let ws = try await plexer.connected("alice")
            let closed = try await ws.run(["op": "close", "code": 4321, "reason": "leaving"])
            #expect(closed["code"] as? Int == 4321, "\(closed)")
        }
    }
}
