import AsyncHTTPClient
import Crypto
import DelayQueue
import FakePushGateways
import Foundation
import Hummingbird
import Logging
import NIOHTTP1
import NotifyAPI
import NotifyCore
import NotifyTestSupport
import PushWorker
import ServiceLifecycle
import Testing

/// The seed flow end to end: a backend notifies, the job waits its delay, and a push worker sends it through
/// real HTTP to fake gateways that check every request as the real services do (Web Push decrypted with the
/// subscriber's key and VAPID verified; webhooks' Standard Webhooks signature verified).
@Suite("Push flow", .timeLimit(.minutes(2)))
struct PushFlowTests {
    struct Fixture: Sendable {
        let api: APITestServer
        let gateway: FakePushGateway
        let gatewayURL: String
        let worker: PushWorkerService

        /// Registers a webhook and a Web Push device for `user` at the fake gateway; returns their targets.
        func registerDevices(for user: String) async throws -> (webhook: String, webPush: String) {
            let token = try await self.api.token(for: user)
            let hook = "hook-\(user)"
            let response = try await self.api.send(
                .PUT, "/v1/devices/\(hook)", bearer: token,
                json: #"{"platform": "webhook", "url": "\#(self.gatewayURL)/webhook/\#(hook)"}"#)
            #expect(response.status == 201)
            let secret = try #require(try response.object()["secret"] as? String)
            try self.gateway.setSecret(secret, for: hook)
            let listed = try await self.api.send(.GET, "/v1/devices", bearer: token)
            #expect(!listed.body.contains("whsec_"), "listings never show a webhook secret")
            let browser = "browser-\(user)"
            let subscriber = self.gateway.addSubscriber(browser)
            let registered = try await self.api.send(
                .PUT, "/v1/devices/\(browser)", bearer: token,
                json: """
                    {"platform": "webpush", "subscription": {"endpoint": "\(self.gatewayURL)/webpush/\(browser)",
                     "keys": {"p256dh": "\(subscriber.p256dh)", "auth": "\(subscriber.authText)"}}}
                    """)
            #expect(registered.status == 201)
            return (hook, browser)
        }

        func notify(_ user: String, delayMs: Int = 1_000, title: String = "New message", collapse: String? = nil)
            async throws -> (notification: String, event: String)
        {
            let collapseField = collapse.map { #", "collapse_key": "\#($0)""# } ?? ""
            let answer = try await self.api.notify(
                #"{"recipients": ["\#(user)"], "type": "message", "room": "general", "payload": {"text": "hi"}, "push": {"delay_ms": \#(delayMs), "title": "\#(title)", "body": "Hello"\#(collapseField)}}"#
            )
            let recipient = try #require((answer["recipients"] as? [[String: Any]])?.first)
            return (try #require(answer["notification_id"] as? String), try #require(recipient["event_id"] as? String))
        }
    }

    static func withFixture(
        _ configure: @Sendable (inout PushWorkerConfiguration) -> Void = { _ in },
        _ body: @Sendable (Fixture) async throws -> Void
    ) async throws {
        try await withAPIServer(api: APIConfiguration(egress: EgressPolicy(allowLoopback: true))) { api in
            let gateway = FakePushGateway()
            var configuration = PushWorkerConfiguration(
                allowLoopback: true, coalesceWindowMs: 50,
                webPush: .init(vapidKey: P256.Signing.PrivateKey(), subject: "mailto:ops@example.com"))
            configure(&configuration)
            let clock = api.clock
            let worker = try await PushWorkerService.make(
                queue: api.queue, subscriber: api.subscriber, configuration: configuration,
                logger: testLogger("worker"),
                now: { Date(timeIntervalSince1970: Double(clock.nowMs) / 1_000) })
            let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
            let app = Application(
                router: gateway.router(),
                configuration: ApplicationConfiguration(address: .hostname("127.0.0.1", port: 0)),
                onServerRunning: { channel in
                    portContinuation.yield(channel.localAddress?.port ?? 0)
                    portContinuation.finish()
                },
                logger: testLogger("gateway"))
            let group = ServiceGroup(
                configuration: ServiceGroupConfiguration(services: [app, worker], logger: testLogger("push")))
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask {
                    defer { portContinuation.finish() }
                    try await group.run()
                }
                var iterator = ports.makeAsyncIterator()
                guard let port = await iterator.next() else { throw TestFailure("the fake gateway did not start") }
                let fixture = Fixture(
                    api: api, gateway: gateway, gatewayURL: "http://127.0.0.1:\(port)", worker: worker)
                do {
                    try await body(fixture)
                } catch {
                    await group.triggerGracefulShutdown()
                    try? await tasks.waitForAll()
                    throw error
                }
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
            }
        }
    }

    /// Waits until no job is due or claimed (the worker settled everything it sent).
    static func waitUntilSettled(_ queue: DelayQueue) async throws {
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            let stats = try await queue.stats().total
            if stats.dueNow == 0, stats.inFlight == 0 { return }
            await Task.yield()
        }
        throw TestFailure("the queue did not settle")
    }

    @Test("not acked: exactly one push per device after the delay, as the gateways require it")
    func unackedIsPushed() async throws {
        try await Self.withFixture { fixture in
            let (hook, browser) = try await fixture.registerDevices(for: "alice")
            let sent = try await fixture.notify("alice", delayMs: 5_000)
            fixture.api.clock.advance(byMs: 5_001)
            await fixture.gateway.waitForDeliveries(2)
            #expect(fixture.gateway.violations.isEmpty)
            let webhook = try #require(fixture.gateway.deliveries(to: hook).first?.json)
            #expect(webhook["notification_id"] as? String == sent.notification)
            #expect(webhook["event_id"] as? String == sent.event)
            #expect(webhook["title"] as? String == "New message")
            #expect(webhook["badge"] as? Int == 1)
            let webPush = try #require(fixture.gateway.deliveries(to: browser).first?.json)
            #expect(webPush["event_id"] as? String == sent.event)
            try await Self.waitUntilSettled(fixture.api.queue)
            #expect(fixture.gateway.deliveries.count == 2)
        }
    }

    @Test("acked by ids, by up_to or retracted: no push; a later unacked one still goes")
    func ackedIsNotPushed() async throws {
        try await Self.withFixture { fixture in
            let (hook, _) = try await fixture.registerDevices(for: "bob")
            let token = try await fixture.api.token(for: "bob")
            let first = try await fixture.notify("bob", delayMs: 1_000)
            let byID = try await fixture.api.send(
                .POST, "/v1/ack", bearer: token, json: #"{"ids": ["\#(first.event)"]}"#)
            #expect(byID.status == 200)
            let second = try await fixture.notify("bob", delayMs: 1_000)
            let upTo = try await fixture.api.send(
                .POST, "/v1/ack", bearer: token, json: #"{"up_to": "\#(second.event)"}"#)
            #expect(try upTo.object()["cancelled"] as? Int == 1)
            let third = try await fixture.notify("bob", delayMs: 1_000)
            let retract = try await fixture.api.send(
                .DELETE, "/v1/notifications/\(third.notification)", bearer: fixture.api.apiKey)
            #expect(retract.status == 200)
            let fourth = try await fixture.notify("bob", delayMs: 2_000, title: "Unacked")
            fixture.api.clock.advance(byMs: 2_001)
            await fixture.gateway.waitForDeliveries(2)
            #expect(fixture.gateway.violations.isEmpty)
            let events = fixture.gateway.deliveries.compactMap { $0.json?["event_id"] as? String }
            #expect(events == [fourth.event, fourth.event])
            #expect(fixture.gateway.deliveries(to: hook).count == 1)
        }
    }

    @Test("a gone device is removed, a failing one retried, and neither holds the other back")
    func gatewayErrors() async throws {
        try await Self.withFixture { fixture in
            let (hook, browser) = try await fixture.registerDevices(for: "carol")
            fixture.gateway.script(browser, [.status(410)])
            fixture.gateway.script(hook, [.status(503, retryAfter: "1")])
            _ = try await fixture.notify("carol", delayMs: 1_000)
            fixture.api.clock.advance(byMs: 1_001)
            // The webhook's 503 makes the job retry after the Retry-After (at least 1 s; the backoff of a
            // webhook's server error is 10 s ± 20 %); meanwhile the 410 removed the Web Push device.
            let token = try await fixture.api.token(for: "carol")
            var devices = try await fixture.api.send(.GET, "/v1/devices", bearer: token).object()
            let deadline = ContinuousClock.now + .seconds(20)
            while devices[browser] != nil, ContinuousClock.now < deadline {
                await Task.yield()
                devices = try await fixture.api.send(.GET, "/v1/devices", bearer: token).object()
            }
            #expect(devices[browser] == nil, "the 410 removed the subscription")
            #expect(devices[hook] != nil)
            fixture.api.clock.advance(byMs: 13_000)
            await fixture.gateway.waitForDeliveries(1)
            #expect(fixture.gateway.deliveries.map(\.target) == [hook])
            #expect(fixture.gateway.violations.isEmpty)
        }
    }

    @Test("pushes with one collapse key that are due together go out as one")
    func coalescing() async throws {
        try await Self.withFixture { fixture in
            let (hook, _) = try await fixture.registerDevices(for: "dave")
            for index in 1...3 {
                _ = try await fixture.notify("dave", delayMs: 1_000 + index, title: "m\(index)", collapse: "general")
            }
            fixture.api.clock.advance(byMs: 2_000)
            await fixture.gateway.waitForDeliveries(2)
            let webhook = try #require(fixture.gateway.deliveries(to: hook).first?.json)
            #expect(webhook["coalesced"] as? Int == 3)
            #expect(webhook["body"] as? String == "3 new messages")
            #expect(webhook["title"] as? String == "m3")
            #expect(webhook["badge"] as? Int == 3)
            try await Self.waitUntilSettled(fixture.api.queue)
            #expect(fixture.gateway.deliveries.count == 2)
        }
    }

    @Test("device URLs that reach internal networks are refused at registration and at send time")
    func egressRefusals() async throws {
        try await Self.withFixture({ $0.allowLoopback = false }) { fixture in
            let token = try await fixture.api.token(for: "erin")
            for url in ["http://169.254.169.254/latest", "https://10.0.0.1/hook", "ftp://example.com/x"] {
                let refused = try await fixture.api.send(
                    .PUT, "/v1/devices/bad", bearer: token, json: #"{"platform": "webhook", "url": "\#(url)"}"#)
                #expect(refused.status == 400, "\(url)")
            }
            // The API here allows loopback but the worker does not: the send is refused, not made.
            let (hook, _) = try await fixture.registerDevices(for: "erin")
            _ = try await fixture.notify("erin", delayMs: 1_000)
            fixture.api.clock.advance(byMs: 1_001)
            var dead = 0
            let deadline = ContinuousClock.now + .seconds(20)
            while dead == 0, ContinuousClock.now < deadline {
                await Task.yield()
                dead = try await fixture.api.queue.stats().total.dead
            }
            #expect(dead == 1)
            let letters = try await fixture.api.queue.deadLetters(
                shard: fixture.api.queue.shards.shard(of: "erin"), limit: 10)
            #expect(letters.first?.error?.contains("refused") == true)
            #expect(fixture.gateway.deliveries(to: hook).isEmpty)
        }
    }
}
