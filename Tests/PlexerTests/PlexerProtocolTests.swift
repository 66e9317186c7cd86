import Configuration
import FakePushGateways
import Foundation
import NIOCore
import NIOWebSocket
import NotifyCore
import Testing

@testable import Plexer

@Suite("Plexer protocol types (no sockets)", .timeLimit(.minutes(1)))
struct PlexerProtocolTests {
    @Test("a request's envelope: ch and id are read, a failure keeps what it could read")
    func parse() throws {
        let request = try PlexerRequest.parse(ByteBuffer(string: #"{"ch":"notify","id":"x1","op":"ack"}"#)).get()
        #expect(request.channel == "notify" && request.id == .string("x1") && request.members["op"] == .string("ack"))
        let numbered = try PlexerRequest.parse(ByteBuffer(string: #"{"ch":"c","id":12345678901234}"#)).get()
        #expect(numbered.id == .integer(12_345_678_901_234) && numbered.id?.json == "12345678901234")
        for (text, channel, id) in [
            ("[1]", nil, nil), ("nope", nil, nil), (#"{"id":3}"#, nil, RequestID.integer(3)),
            (#"{"ch":"c","id":{"a":1}}"#, "c", nil), (#"{"ch":"c","id":""}"#, "c", nil),
        ] as [(String, String?, RequestID?)] {
            guard case .failure(let failure) = PlexerRequest.parse(ByteBuffer(string: text)) else {
                Issue.record("\(text) parsed")
                continue
            }
            #expect(failure.channel == channel && failure.id == id && failure.failure.code == "bad_frame", "\(text)")
        }
    }

    @Test("frames: an error echoes channel and id, a notification wraps the stored members")
    func frames() {
        let error = PlexerFrames.error(
            channel: "chat", id: .string("q\"1"), PlexerFailure("rate_limited", "slow down", retryMs: 250))
        #expect(
            String(buffer: error)
                == #"{"ch":"chat","id":"q\"1","error":{"code":"rate_limited","message":"slow down","retry_ms":250}}"#)
        let event = InboxEvent(id: StreamID("5-1")!, members: #""type":"message","payload":{}"#)
        #expect(
            String(buffer: PlexerFrames.notification(event))
                == #"{"ch":"notify","ev":"notification","event":{"id":"5-1","type":"message","payload":{}}}"#)
    }

    @Test("the rate limit: a burst, then refusals with a retry hint, then close after a burst of refusals")
    func rateLimit() {
        let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
        var limit = RequestRateLimit(perSecond: 2, burst: 3, now: start)
        #expect((0..<3).map { _ in limit.take(now: start) } == [.allowed, .allowed, .allowed])
        #expect(limit.take(now: start) == .refused(retryMs: 500))
        #expect(limit.take(now: start + .milliseconds(500)) == .allowed, "refilled at 2 per second")
        #expect((0..<3).map { _ in limit.take(now: start + .milliseconds(500)) }.allSatisfy { $0 != .allowed })
        #expect(limit.take(now: start + .milliseconds(500)) == .close)

        // A steady flood at twice the rate: every other request passes, and it is still closed within seconds.
        var flood = RequestRateLimit(perSecond: 10, burst: 20, now: start)
        var closedAfter: Int?
        for step in 0..<200 where closedAfter == nil {
            if flood.take(now: start + .milliseconds(Int64(step * 50))) == .close { closedAfter = step * 50 }
        }
        #expect((closedAfter ?? .max) < 10_000, "closed after \(String(describing: closedAfter)) ms")
        // Just over the rate (one refusal in ten): refused now and then, never closed.
        var brushing = RequestRateLimit(perSecond: 10, burst: 20, now: start)
        let decisions = (0..<1_000).map { brushing.take(now: start + .milliseconds(Int64($0 * 91))) }
        #expect(!decisions.contains(.close) && decisions.contains { $0 != .allowed })
    }

    static let route = UpstreamRoute(
        channel: "chat", url: URL(string: "http://chat.internal")!, allowedPrefixes: ["/v1/rooms", "/v1/me/"],
        allowedHeaders: ["accept-language", "authorization", "x-forwarded-for"], identity: .signed,
        secret: String(repeating: "s", count: 32))

    func request(_ members: [String: JSONValue]) -> PlexerRequest {
        PlexerRequest(channel: "chat", id: .integer(1), members: members)
    }

    @Test("upstream paths: under a prefix and clean, or refused; encoded traversal counts as traversal")
    func paths() throws {
        for path in ["/v1/rooms", "/v1/rooms/7/messages", "/v1/me/", "/v1/rooms/caf%C3%A9"] {
            let built = try UpstreamRequest(
                self.request(["path": .string(path)]), route: Self.route, user: "a", token: nil)
            #expect(built.target == path)
        }
        for path in [
            "/v1/roomsX", "/v1/me", "/v1/rooms/../admin", "/v1/rooms/%2E%2E/admin", "/v1/rooms/x/..", "/v1/rooms//x",
            "/v1/rooms/./x", "/admin", "/v1/rooms%2F..%2Fadmin", "/v1/rooms/a\\b", "relative", "/v1/rooms/x?y=1",
            "/v1/rooms/%252e%252e/admin", "/v1/rooms/..;/admin", "/v1/rooms/x%2Fy", "/v1/rooms/a|b", "/v1/rooms/{x}",
            "/v1/rooms/%2e", "/v1/rooms/%00", "/v1/rooms/%zz",
        ] {
            #expect(throws: PlexerFailure.self, "\(path)") {
                try UpstreamRequest(self.request(["path": .string(path)]), route: Self.route, user: "a", token: nil)
            }
        }
    }

    @Test("upstream headers: only allowed ones pass, identity-like ones never; the Plexer signs who asks")
    func headersAndIdentity() throws {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let built = try UpstreamRequest(
            self.request([
                "method": .string("post"), "path": .string("/v1/rooms/1"), "query": .string("a=1&b=%20"),
                "headers": .object([
                    "Accept-Language": .string("de"), "Authorization": .string("Bearer forged"),
                    "X-Forwarded-For": .string("10.0.0.1"), "X-Other": .string("x"),
                ]),
                "body": .object(["text": .string("hi")]),
            ]), route: Self.route, user: "alice", token: nil, now: now)
        #expect(built.method == "POST" && built.target == "/v1/rooms/1?a=1&b=%20")
        let names = built.headers.map(\.name)
        #expect(
            names == ["accept-language", "content-type", "x-notify-user", "x-notify-timestamp", "x-notify-signature"])
        let signature = IdentitySignature.sign(
            secret: String(repeating: "s", count: 32), user: "alice", timestamp: "1800000000", method: "POST",
            target: "/v1/rooms/1?a=1&b=%20", body: ByteBuffer(string: #"{"text":"hi"}"#))
        #expect(built.headers.last?.value == signature && signature.hasPrefix("v1="))
        let secret = String(repeating: "s", count: 32)
        let body = ByteBuffer(string: #"{"text":"hi"}"#)
        #expect(
            IdentitySignature.verify(
                signature, secret: secret, user: "alice", timestamp: "1800000000", method: "POST",
                target: "/v1/rooms/1?a=1&b=%20", body: body))
        for (user, target, tampered) in [
            ("mallory", "/v1/rooms/1?a=1&b=%20", body), ("alice", "/v1/rooms/2?a=1&b=%20", body),
            ("alice", "/v1/rooms/1?a=1&b=%20", ByteBuffer(string: #"{"text":"ho"}"#)),
        ] {
            #expect(
                !IdentitySignature.verify(
                    signature, secret: secret, user: user, timestamp: "1800000000", method: "POST", target: target,
                    body: tampered))
        }
        var jwtRoute = Self.route
        jwtRoute.identity = .jwt
        let forwarded = try UpstreamRequest(
            self.request(["path": .string("/v1/rooms/1")]), route: jwtRoute, user: "alice", token: "t.o.k")
        #expect(forwarded.headers.contains { $0.name == "authorization" && $0.value == "Bearer t.o.k" })
        #expect(throws: PlexerFailure.self) {
            try UpstreamRequest(
                self.request(["path": .string("/v1/rooms/1"), "headers": .object(["bad\nname": .string("x")])]),
                route: Self.route, user: "a", token: nil)
        }
    }

    @Test("routes from configuration: the kind picks the URL schemes; a forwarded JWT needs TLS off this host")
    func routesFromConfiguration() async throws {
        func routes(_ environment: [String: String]) async throws -> [UpstreamRoute] {
            let config = try await NotifyConfigLoader.reader(environment: environment)
            return try UpstreamRoute.routes(config: config.scoped(to: "plexer"))
        }
        let secret = String(repeating: "s", count: 32)
        let live = try await routes([
            "NOTIFY_PLEXER_ROUTES": "live", "NOTIFY_PLEXER_ROUTE_LIVE_KIND": "websocket",
            "NOTIFY_PLEXER_ROUTE_LIVE_URL": "wss://rt.example.com/socket", "NOTIFY_PLEXER_ROUTE_LIVE_SECRET": secret,
        ])
        #expect(live.first?.kind == .websocket && live.first?.url.absoluteString == "wss://rt.example.com/socket")
        for (kind, url, identity) in [
            ("websocket", "https://rt.example.com/", "signed"), ("http", "ws://rt.example.com/", "signed"),
            ("tcp", "ws://rt.example.com/", "signed"), ("websocket", "ws://rt.example.com/", "jwt"),
        ] {
            await #expect(throws: NotifyConfigError.self, "\(kind) \(url) \(identity)") {
                try await routes([
                    "NOTIFY_PLEXER_ROUTES": "live", "NOTIFY_PLEXER_ROUTE_LIVE_KIND": kind,
                    "NOTIFY_PLEXER_ROUTE_LIVE_URL": url, "NOTIFY_PLEXER_ROUTE_LIVE_SECRET": secret,
                    "NOTIFY_PLEXER_ROUTE_LIVE_IDENTITY": identity,
                ])
            }
        }
        // The upstreams' extra certificate authorities: a file that is not a PEM of certificates is refused at start.
        func caFile(_ environment: [String: String]) async throws -> String? {
            let upstreams = try HTTPUpstreams(
                config: try await NotifyConfigLoader.reader(environment: environment).scoped(to: "plexer"))
            try await upstreams.shutdown()
            return upstreams.caFile
        }
        #expect(try await caFile([:]) == nil)
        for bad in ["/nonexistent/ca.pem", #filePath] {
            await #expect(throws: NotifyConfigError.self, "\(bad)") {
                try await caFile(["NOTIFY_PLEXER_UPSTREAM_CA_FILE": bad])
            }
        }
        let authority = try TestCertificateAuthority()
        defer { authority.remove() }
        #expect(try await caFile(["NOTIFY_PLEXER_UPSTREAM_CA_FILE": authority.caFile]) == authority.caFile)
    }

    @Test("upstream text is passed on as data only when it is JSON a client can parse (no BOM, no NUL)")
    func upstreamMessageFrames() throws {
        func member(_ text: [UInt8]) throws -> String? {
            let frame = try #require(
                PlexerFrames.upstreamMessage(channel: "rt", opcode: .text, data: ByteBuffer(bytes: text)))
            let object = try JSONSerialization.jsonObject(with: Data(frame.readableBytesView)) as? [String: Any]
            return ["data", "text", "binary"].first { object?[$0] != nil }
        }
        #expect(try member(Array(#"{"a":1}"#.utf8)) == "data")
        #expect(try member(Array("plain".utf8)) == "text")
        #expect(try member([0xEF, 0xBB, 0xBF] + Array(#"{"a":1}"#.utf8)) == "text", "a BOM would break JSON.parse")
        #expect(try member([0x7B, 0x00, 0x7D, 0x00]) == "text", "NULs Foundation reads as UTF-16")
        #expect(PlexerFrames.upstreamMessage(channel: "rt", opcode: .text, data: ByteBuffer(bytes: [0xFF])) == nil)
    }
}
