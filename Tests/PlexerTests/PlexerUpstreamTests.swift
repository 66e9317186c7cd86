import FakePushGateways
import Foundation
import NotifyTestSupport
import Plexer
import Synchronization
import Testing

@Suite("Plexer upstream channels", .timeLimit(.minutes(2)))
struct PlexerUpstreamTests {
    static func chat(port: Int, timeoutMs: Int = 10_000) -> UpstreamRoute {
        UpstreamRoute(
            channel: "chat", url: URL(string: "http://127.0.0.1:\(port)")!, allowedPrefixes: ["/v1/rooms"],
            allowedHeaders: ["accept-language", "x-user-id"], timeoutMs: timeoutMs, identity: .signed,
            secret: UpstreamTestService.secret)
    }

    @Test(
        "the seed flow: a chat request goes upstream, which notifies the recipient; the event arrives live and its ack cancels the push"
    )
    func seedFlow() async throws {
        let upstream = UpstreamTestService()
        try await upstream.run { port in
            try await withPlexer(routes: [Self.chat(port: port)]) { plexer in
                upstream.onMessage.withLock { $0 = { to in try await plexer.notify(to) } }
                let bob = try await plexer.connected("bob")
                try await bob.send(json: ["ch": "notify", "op": "resume", "id": 1])
                _ = try await bob.receive()

                let alice = try await plexer.connected("alice")
                try await alice.send(
                    json: [
                        "ch": "chat", "id": "m1", "method": "POST", "path": "/v1/rooms/7/messages",
                        "query": "draft=false", "body": ["to": "bob", "text": "hi"],
                        "headers": ["Accept-Language": "de", "X-Notify-User": "mallory", "x-user-id": "mallory"],
                    ])
                let reply = try await alice.receive()
                #expect(reply["id"] as? String == "m1" && reply["status"] as? Int == 201, "\(reply)")
                let headers = try #require(reply["headers"] as? [String: String])
                #expect(headers["location"] == "/v1/rooms/7/messages/m1")
                #expect(headers["x-internal"] == nil, "only the route's response headers come back")
                let echo = try #require(reply["body"] as? [String: Any])
                #expect(
                    echo["method"] as? String == "POST"
                        && echo["target"] as? String == "/v1/rooms/7/messages?draft=false")
                #expect(echo["signature_ok"] as? Bool == true)
                let seen = try #require(echo["headers"] as? [String: String])
                #expect(seen["x-notify-user"] == "alice", "the Plexer's identity, not the client's")
                #expect(seen["x-user-id"] == nil, "identity-like headers are dropped even when allowed")
                #expect(seen["accept-language"] == "de")

                let event = try await bob.receive()
                let eventID = try #require((event["event"] as? [String: Any])?["id"] as? String)
                try await bob.send(json: ["ch": "notify", "op": "ack", "id": 2, "ids": [eventID]])
                let ack = try await bob.receive()
                #expect(ack["cancelled"] as? Int == 1, "the ack cancelled the pending push: \(ack)")
            }
        }
    }

    @Test("https: the upstream's certificate is verified against plexer.upstreamCaFile; without it, refused")
    func secureHTTPUpstream() async throws {
        let authority = try TestCertificateAuthority(addressToo: false)
        defer { authority.remove() }
        let upstream = UpstreamTestService()
        try await upstream.run(tls: try authority.serverTLS()) { port in
            var route = Self.chat(port: port)
            route.url = URL(string: "https://localhost:\(port)")!
            let request = #"{"ch":"chat","id":1,"method":"GET","path":"/v1/rooms/5"}"#
            try await withPlexer(routes: [route], upstreamCaFile: authority.caFile) { plexer in
                let ws = try await plexer.connected("alice")
                try await ws.send(request)
                let reply = try await ws.receive()
                #expect(reply["status"] as? Int == 200, "\(reply)")
                #expect((reply["body"] as? [String: Any])?["signature_ok"] as? Bool == true, "\(reply)")
            }
            try await withPlexer(routes: [route]) { plexer in
                let ws = try await plexer.connected("alice")
                try await ws.send(request)
                let reply = try await ws.receive()
                #expect((reply["error"] as? [String: Any])?["code"] as? String == "upstream_unavailable", "\(reply)")
            }
        }
    }

    @Test("a route URL with a path: the upstream gets that path before the client's, and the signature covers both")
    func routeWithBasePath() async throws {
        let upstream = UpstreamTestService()
        try await upstream.run { port in
            let route = UpstreamRoute(
                channel: "chat", url: URL(string: "http://127.0.0.1:\(port)/v1/")!, allowedPrefixes: ["/rooms"],
                identity: .signed, secret: UpstreamTestService.secret)
            try await withPlexer(routes: [route]) { plexer in
                let ws = try await plexer.connected("alice")
                try await ws.send(json: ["ch": "chat", "id": 1, "path": "/rooms/7", "query": "a=%20b"])
                let reply = try await ws.receive()
                let echo = try #require(reply["body"] as? [String: Any], "\(reply)")
                #expect(echo["target"] as? String == "/v1/rooms/7?a=%20b")
                #expect(echo["signature_ok"] as? Bool == true)
            }
        }
    }

    @Test(
        "paths outside the route, traversal and bad methods are refused; a slow upstream times out; a down one is unavailable"
    )
    func refusalsAndFailures() async throws {
        let upstream = UpstreamTestService()
        let refusing = try RefusingPort()
        try await upstream.run { port in
            let down = UpstreamRoute(
                channel: "down", url: URL(string: "http://127.0.0.1:\(refusing.port)")!, identity: .signed,
                secret: UpstreamTestService.secret)
            let slow = UpstreamRoute(
                channel: "slow", url: URL(string: "http://127.0.0.1:\(port)")!, timeoutMs: 1_500, identity: .signed,
                secret: UpstreamTestService.secret)
            try await withPlexer(routes: [Self.chat(port: port), down, slow]) { plexer in
                let ws = try await plexer.connected("alice")
                for (index, path) in [
                    "/v1/admin", "/v1/rooms/../admin", "/v1/rooms/%2e%2e/admin", "/v1/rooms//x", "/v1/roomsX",
                ].enumerated() {
                    try await ws.send(json: ["ch": "chat", "id": index, "path": path])
                    let answer = try await ws.receive()
                    #expect(answer["id"] as? Int == index)
                    #expect(
                        (answer["error"] as? [String: Any])?["code"] as? String == "forbidden", "\(path): \(answer)")
                }
                try await ws.send(json: ["ch": "chat", "id": 10, "method": "TRACE", "path": "/v1/rooms/1"])
                #expect((try await ws.receive()["error"] as? [String: Any])?["code"] as? String == "invalid")
                try await ws.send(json: ["ch": "chat", "id": 11, "path": "/v1/rooms/1", "extra": true])
                #expect((try await ws.receive()["error"] as? [String: Any])?["code"] as? String == "bad_frame")

                try await ws.send(json: ["ch": "chat", "id": 12, "path": "/v1/rooms/1"])
                let got = try await ws.receive()
                #expect(got["status"] as? Int == 200 && (got["body"] as? [String: Any])?["method"] as? String == "GET")

                try await ws.send(json: ["ch": "slow", "id": 13, "path": "/v1/slow"])
                let late = try await ws.receive()
                #expect((late["error"] as? [String: Any])?["code"] as? String == "upstream_unavailable", "\(late)")
                // Its head comes at once and its body never: the whole exchange is what the timeout bounds.
                try await ws.send(json: ["ch": "slow", "id": 16, "path": "/v1/drip"])
                let dripped = try await ws.receive()
                let dripError = try #require(dripped["error"] as? [String: Any], "\(dripped)")
                #expect((dripError["message"] as? String)?.contains("did not answer within") == true, "\(dripError)")
                try await ws.send(json: ["ch": "down", "id": 14, "path": "/anything"])
                let refused = try await ws.receive()
                #expect((refused["error"] as? [String: Any])?["code"] as? String == "upstream_unavailable")
                try await ws.send(json: ["ch": "slow", "id": 15, "path": "/v1/text"])
                #expect(try await ws.receive()["body"] as? String == "hi", "a text answer comes as a string")
            }
        }
    }
}
