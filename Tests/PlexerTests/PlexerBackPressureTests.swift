import Foundation
import NotifyTestSupport
import Plexer
import Testing

/// Floods through a WebSocket channel to a client that reads slowly: CPU-heavy for a few seconds, so `ops/test`
/// runs them alone after the parallel suite (they would slow every timing-sensitive test beside them).
@Suite("Plexer WebSocket passthrough under back-pressure", .timeLimit(.minutes(2)))
struct PlexerBackPressureTests {
    @Test("a client that stops reading holds the upstream back instead of being dropped, and then gets everything")
    func backPressure() async throws {
        try await Self.withSlowReader { upstream, ws in
            // 16 MB: far over the client's 1 MiB outbound limit and the kernel's socket buffers.
            let count = 4_000
            try await ws.send(json: ["ch": "live", "data": ["cmd": "flood", "count": count, "size": 4_000]])
            for index in 0..<count {
                let message = try await ws.receive()
                #expect((message["data"] as? [String: Any])?["n"] as? Int == index, "\(message["ev"] ?? "")")
                if message["ev"] as? String != "message" { break }
            }
            _ = try await upstream.next("flooded")
        }
    }

    @Test("tiny upstream messages to a client that reads slowly are relayed once each, in order, without a drop")
    func tinyMessageFlood() async throws {
        try await Self.withSlowReader { upstream, ws in
            // 3-byte binary frames grow ~15× on their way to the client (a JSON envelope, base64): 8,000 of them
            // are ~370 KB for a client that reads one message at a time through a 4 KiB receive buffer.
            let count = 8_000
            try await ws.send(json: ["ch": "live", "data": ["cmd": "flood_binary", "count": count]])
            let answer = try await ws.run(["op": "recv_many", "count": count])
            let texts = try #require(answer["texts"] as? [String], "\(answer)")
            #expect(answer["closed"] == nil, "the client was not dropped: \(answer["code"] ?? "")")
            #expect(texts.count == count)
            let expected = (0..<count).map { #"{"ch":"live","ev":"message","binary":""# + Self.base64($0) + #""}"# }
            #expect(texts == expected, "every message once, in order")
            _ = try await upstream.next("flooded")
        }
    }

    static func base64(_ index: Int) -> String {
        Data([UInt8(index >> 16 & 0xFF), UInt8(index >> 8 & 0xFF), UInt8(index & 0xFF)]).base64EncodedString()
    }

    /// A client that reads one message at a time through a 4 KiB receive buffer (ready, as alice), on a Plexer with
    /// the `live` channel to a fresh upstream.
    static func withSlowReader(
        _ body: @Sendable (UpstreamWebSocketService, WebSocketDriver) async throws -> Void
    ) async throws {
        let upstream = try await UpstreamWebSocketService()
        try await withPlexer(routes: [PlexerPassthroughTests.route(upstream)]) { plexer in
            let ws = try WebSocketDriver()
            let token = try await plexer.token(for: "alice")
            _ = try await ws.connect(plexer.url + "?access_token=\(token)", maxQueue: 1, receiveBuffer: 4_096)
            _ = try await ws.receive()
            try await body(upstream, ws)
        }
    }
}
