import Foundation
import NotifyCore
import Testing

@Suite("The JavaScript client in headless Chromium", .timeLimit(.minutes(2)))
struct BrowserClientTests {
    static let chromium = "/usr/bin/chromium"

    @Test("clients/js in Chromium: connects, sees a notification live, and its ack cancels the push")
    func liveAndAck() async throws {
        try #require(
            FileManager.default.isExecutableFile(atPath: Self.chromium), "ops/bootstrap installs Debian's chromium")
        try await withPlexer { plexer in
            let browser = try await Self.open(plexer, tokens: [try await plexer.token(for: "alice")])
            let eventID = try await plexer.notify("alice")
            let events = try await browser.run(["op": "wait", "expr": "harness.events.length > 0 && harness.events"])
            let first = try #require((events["value"] as? [[String: Any]])?.first)
            #expect(first["id"] as? String == eventID && first["type"] as? String == "message")
            let acks = try await browser.run(["op": "wait", "expr": "harness.acks.length > 0 && harness.acks"])
            let ack = try #require((acks["value"] as? [[String: Any]])?.first)
            #expect(ack["cancelled"] as? Int == 1, "the ack from the browser cancelled the push: \(ack)")
            let errors = try await browser.run(["op": "eval", "expr": "harness.errors"])
            #expect((errors["value"] as? [Any])?.isEmpty == true)
        }
    }

    @Test(
        "clients/js in Chromium: its token expires (4003), it reconnects with a fresh one and resumes without gap or duplicate"
    )
    func reconnectAndResume() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.chromium))
        try await withPlexer { plexer in
            let tokens = [try await plexer.token(for: "alice", expiresIn: 6), try await plexer.token(for: "alice")]
            let browser = try await Self.open(plexer, tokens: tokens)
            let before = try await plexer.notify("alice", push: false)
            _ = try await browser.run(["op": "wait", "expr": "harness.events.length > 0"])
            let closed = try await browser.run([
                "op": "wait", "expr": "harness.states.find((s) => s.startsWith('closed'))", "timeout": 20,
            ])
            #expect((closed["value"] as? String)?.contains("4003") == true, "\(closed)")
            // Sent around the reconnect: it comes through the resume or live, once either way.
            let after = try await plexer.notify("alice", push: false)
            let events = try await browser.run([
                "op": "wait", "expr": "harness.events.length >= 2 && harness.events.map((e) => e.id)", "timeout": 20,
            ])
            #expect(events["value"] as? [String] == [before, after])
            let states = try await browser.run(["op": "eval", "expr": "harness.states"])
            #expect((states["value"] as? [String])?.filter { $0 == "ready" }.count == 2, "\(states)")
            let extra = try await browser.run(["op": "wait", "expr": "harness.events.length > 2", "timeout": 1])
            #expect(extra["ok"] as? Bool == false, "nothing twice")
        }
    }

    @Test(
        "clients/js in Chromium: a Redis outage leaves the socket up (requests on other channels work), and the feed resumes after it"
    )
    func storeOutage() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.chromium))
        let upstream = UpstreamTestService()
        try await upstream.run { port in
            try await withPlexer(routes: [PlexerUpstreamTests.chat(port: port)]) { plexer in
                let browser = try await Self.open(plexer, tokens: [try await plexer.token(for: "alice")])
                plexer.redis.kill()
                let unavailable = try await browser.run([
                    "op": "wait", "expr": "harness.states.find((s) => s.startsWith('unavailable'))", "timeout": 20,
                ])
                #expect(unavailable["ok"] as? Bool == true, "the feed reported the outage: \(unavailable)")
                _ = try await browser.run([
                    "op": "eval",
                    "expr": """
                    client.request("chat", { method: "GET", path: "/v1/rooms/1" })
                      .then((reply) => { harness.reply = reply.status; }, (error) => { harness.reply = error.code; })
                    """,
                ])
                let reply = try await browser.run(["op": "wait", "expr": "harness.reply", "timeout": 10])
                #expect(reply["value"] as? Int == 200, "the chat channel works during the outage: \(reply)")

                try await plexer.redis.restart()
                let resumed = try await browser.run([
                    "op": "wait", "expr": "harness.states.filter((s) => s === 'ready').length >= 2 && harness.states",
                    "timeout": 40,
                ])
                let states = try #require(resumed["value"] as? [String], "the feed resumed: \(resumed)")
                #expect(!states.contains { $0.hasPrefix("closed") }, "the socket stayed up: \(states)")
                let eventID = try await plexer.notify("alice", push: false)
                let events = try await browser.run([
                    "op": "wait", "expr": "harness.events.length > 0 && harness.events.map((e) => e.id)", "timeout": 20,
                ])
                #expect(events["value"] as? [String] == [eventID])
            }
        }
    }

    /// Chromium with the harness page connected (ready) as the first of `tokens`' user.
    static func open(_ plexer: PlexerTestServer, tokens: [String]) async throws -> WebSocketDriver {
        let page = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("clients/js/test/harness.html")
        var url = URLComponents(url: page, resolvingAgainstBaseURL: false)!
        url.queryItems = [
            URLQueryItem(name: "url", value: plexer.url),
            URLQueryItem(name: "token", value: tokens.joined(separator: ",")),
        ]
        let browser = try WebSocketDriver(script: "browser_driver.py")
        _ = try await browser.run(["op": "open", "chromium": Self.chromium, "url": url.string!])
        let ready = try await browser.run([
            "op": "wait", "expr": "window.harness && harness.states.includes('ready') && harness.states", "timeout": 20,
        ])
        guard ready["ok"] as? Bool == true else { throw DriverFailure("the page did not get ready: \(ready)") }
        return browser
    }
}
