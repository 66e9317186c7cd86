import AsyncHTTPClient
import Crypto
import CryptoExtras
import DelayQueue
import FakePushGateways
import Foundation
import Hummingbird
import HummingbirdHTTP2
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
        /// Plain HTTP/1.1 on loopback (webhooks, Web Push).
        let gatewayURL: String
        /// TLS with HTTP/2 (APNs, FCM, and Web Push as real services serve it).
        let secureURL: String
        let worker: PushWorkerService

        /// Registers an APNs and an FCM device for `user`; returns their tokens.
        func registerMobileDevices(for user: String) async throws -> (apns: String, fcm: String) {
            let token = try await self.api.token(for: user)
            let apns = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
            let fcm = "fcm-\(user)-" + UUID().uuidString
            let phone = try await self.api.send(
                .PUT, "/v1/devices/phone", bearer: token,
                json: #"{"platform": "apns", "token": "\#(apns)", "app_id": "com.example.chat"}"#)
            #expect(phone.status == 201)
            let android = try await self.api.send(
                .PUT, "/v1/devices/android", bearer: token, json: #"{"platform": "fcm", "token": "\#(fcm)"}"#)
            #expect(android.status == 201)
            return (apns, fcm)
        }

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
            // Registered again without a secret (as apps do on every start): it keeps its secret, not shown again;
            // the deliveries below verify with the first one.
            let again = try await self.api.send(
                .PUT, "/v1/devices/\(hook)", bearer: token,
                json: #"{"platform": "webhook", "url": "\#(self.gatewayURL)/webhook/\#(hook)"}"#)
            #expect(again.status == 200 && !again.body.contains("whsec_"))
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
        let authority = try TestCertificateAuthority()
        defer { authority.remove() }
        let apnsKey = P256.Signing.PrivateKey()
        let fcmKey = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        try await withAPIServer(api: APIConfiguration(egress: EgressPolicy(allowLoopback: true))) { api in
            let gateway = FakePushGateway()
            try await gateway.configureAPNs(key: apnsKey.publicKey, keyID: "ABC123DEFG", teamID: "DEF123GHIJ")
            try await gateway.configureFCM(
                publicKeyPEM: fcmKey.publicKey.pemRepresentation, clientEmail: "push@chat.iam.gserviceaccount.com",
                projectID: "chat-app")
            // The gateways first (plain HTTP/1.1, and TLS offering h2), then a worker configured with their ports.
            let (ports, portContinuation) = AsyncStream.makeStream(of: (String, Int).self)
            let plain = Application(
                router: gateway.router(),
                configuration: ApplicationConfiguration(address: .hostname("127.0.0.1", port: 0)),
                onServerRunning: { portContinuation.yield(("plain", $0.localAddress?.port ?? 0)) },
                logger: testLogger("gateway"))
            let secure = Application(
                router: gateway.router(), server: try .http2Upgrade(tlsConfiguration: authority.serverTLS()),
                configuration: ApplicationConfiguration(address: .hostname("127.0.0.1", port: 0)),
                onServerRunning: { portContinuation.yield(("secure", $0.localAddress?.port ?? 0)) },
                logger: testLogger("gateway-h2"))
            let gateways = ServiceGroup(
                configuration: ServiceGroupConfiguration(services: [plain, secure], logger: testLogger("gateways")))
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask {
                    defer { portContinuation.finish() }
                    try await gateways.run()
                }
                var bound: [String: Int] = [:]
                for await (name, port) in ports {
                    bound[name] = port
                    if bound.count == 2 { break }
                }
                guard let plainPort = bound["plain"], let securePort = bound["secure"] else {
                    throw TestFailure("the fake gateways did not start")
                }
                let secureURL = "https://localhost:\(securePort)"
                var configuration = PushWorkerConfiguration(
                    allowLoopback: true, caFile: authority.caFile, coalesceWindowMs: 200,
                    apns: .init(
                        keyPEM: apnsKey.pemRepresentation, keyID: "ABC123DEFG", teamID: "DEF123GHIJ",
                        productionURL: secureURL, sandboxURL: secureURL),
                    fcm: .init(
                        serviceAccount: FCMServiceAccount(
                            projectID: "chat-app", clientEmail: "push@chat.iam.gserviceaccount.com",
                            privateKey: fcmKey.pemRepresentation, tokenURI: "\(secureURL)/token"),
                        baseURL: secureURL),
                    webPush: .init(vapidKey: P256.Signing.PrivateKey(), subject: "mailto:ops@example.com"))
                configure(&configuration)
                let clock = api.clock
                let worker = try await PushWorkerService.make(
                    queue: api.queue, subscriber: api.subscriber, configuration: configuration,
                    logger: testLogger("worker"), now: { Date(timeIntervalSince1970: Double(clock.nowMs) / 1_000) })
                let workers = ServiceGroup(
                    configuration: ServiceGroupConfiguration(services: [worker], logger: testLogger("worker")))
                tasks.addTask { try await workers.run() }
                let fixture = Fixture(
                    api: api, gateway: gateway, gatewayURL: "http://127.0.0.1:\(plainPort)", secureURL: secureURL,
                    worker: worker)
                do {
                    try await body(fixture)
                } catch {
                    await workers.triggerGracefulShutdown()
                    await gateways.triggerGracefulShutdown()
                    try? await tasks.waitForAll()
                    throw error
                }
                await workers.triggerGracefulShutdown()
                await gateways.triggerGracefulShutdown()
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
            try await Task.sleep(for: .milliseconds(20))  // polling Redis, not a guess at timing
        }
        throw TestFailure("the queue did not settle")
    }

    @Test("not acked: exactly one push per device after the delay, as the gateways require it")
    func unackedIsPushed() async throws {
        try await Self.withFixture { fixture in
            let (hook, browser) = try await fixture.registerDevices(for: "alice")
            let sent = try await fixture.notify("alice", delayMs: 5_000)
            fixture.api.clock.advance(byMs: 5_001)
            try await fixture.gateway.waitForDeliveries(2)
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
            try await fixture.gateway.waitForDeliveries(2)
            #expect(fixture.gateway.violations.isEmpty)
            try await Self.waitUntilSettled(fixture.api.queue)
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
                try await Task.sleep(for: .milliseconds(20))
                devices = try await fixture.api.send(.GET, "/v1/devices", bearer: token).object()
            }
            #expect(devices[browser] == nil, "the 410 removed the subscription")
            #expect(devices[hook] != nil)
            try await Self.waitUntilSettled(fixture.api.queue)  // the retry is scheduled before time moves on
            fixture.api.clock.advance(byMs: 13_000)
            try await fixture.gateway.waitForDeliveries(1)
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
            try await fixture.gateway.waitForDeliveries(2)
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
                try await Task.sleep(for: .milliseconds(20))
                dead = try await fixture.api.queue.stats().total.dead
            }
            #expect(dead == 1)
            let letters = try await fixture.api.queue.deadLetters(
                shard: fixture.api.queue.shards.shard(of: "erin"), limit: 10)
            #expect(letters.first?.error?.contains("refused") == true)
            #expect(fixture.gateway.deliveries(to: hook).isEmpty)
        }
    }

    @Test("APNs and FCM over TLS and HTTP/2: one push each, with the headers, token and body the services check")
    func mobileGateways() async throws {
        try await Self.withFixture { fixture in
            let (apns, fcm) = try await fixture.registerMobileDevices(for: "frank")
            let sent = try await fixture.notify("frank", delayMs: 1_000, collapse: "general")
            fixture.api.clock.advance(byMs: 1_100)
            try await fixture.gateway.waitForDeliveries(2)
            #expect(fixture.gateway.violations.isEmpty)
            let apple = try #require(fixture.gateway.deliveries(to: apns).first)
            #expect(apple.headers["apns-topic"] == "com.example.chat")
            #expect(apple.headers["apns-collapse-id"] == "general")
            #expect(apple.headers["apns-push-type"] == "alert" && apple.headers["apns-priority"] == "10")
            let aps = try #require(apple.json?["aps"] as? [String: Any])
            #expect((aps["alert"] as? [String: String])?["title"] == "New message")
            #expect(apple.json?["event_id"] as? String == sent.event)
            let google = try #require(fixture.gateway.deliveries(to: fcm).first?.json?["message"] as? [String: Any])
            #expect(google["token"] as? String == fcm)
            #expect((google["data"] as? [String: String])?["notification_id"] == sent.notification)
            #expect(fixture.gateway.tokenGrants == 1)
        }
    }

    @Test("gone tokens (APNs 410 Unregistered, FCM UNREGISTERED) remove their devices")
    func goneTokens() async throws {
        try await Self.withFixture { fixture in
            let (apns, fcm) = try await fixture.registerMobileDevices(for: "grace")
            fixture.gateway.script(apns, [.status(410, body: #"{"reason":"Unregistered","timestamp":1700000000000}"#)])
            fixture.gateway.script(
                fcm,
                [
                    .status(
                        404,
                        body:
                            #"{"error":{"code":404,"message":"Requested entity was not found.","status":"NOT_FOUND","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"UNREGISTERED"}]}}"#
                    )
                ])
            _ = try await fixture.notify("grace", delayMs: 1_000)
            fixture.api.clock.advance(byMs: 1_100)
            try await Self.waitUntilSettled(fixture.api.queue)
            let devices = try await fixture.api.send(
                .GET, "/v1/devices", bearer: try await fixture.api.token(for: "grace"))
            #expect(try devices.object().isEmpty, "both devices removed: \(devices.body)")
            #expect(try await fixture.api.queue.stats().total.dead == 0)
        }
    }

    @Test("expired credentials are refreshed once and the push goes out in the same attempt")
    func credentialRefresh() async throws {
        try await Self.withFixture { fixture in
            let (apns, fcm) = try await fixture.registerMobileDevices(for: "heidi")
            fixture.gateway.script(apns, [.status(403, body: #"{"reason":"ExpiredProviderToken"}"#)])
            _ = try await fixture.notify("heidi", delayMs: 1_000)
            fixture.api.clock.advance(byMs: 1_100)
            try await fixture.gateway.waitForDeliveries(2)
            // FCM: the access token stops working (as after an hour); the worker fetches a new one and resends.
            fixture.gateway.revokeAccessTokens()
            _ = try await fixture.notify("heidi", delayMs: 1_000)
            fixture.api.clock.advance(byMs: 1_100)
            try await fixture.gateway.waitForDeliveries(4)
            #expect(fixture.gateway.deliveries(to: apns).count == 2)
            #expect(fixture.gateway.deliveries(to: fcm).count == 2)
            #expect(fixture.gateway.tokenGrants == 2)
            #expect(
                fixture.gateway.violations.filter {
                    !$0.contains("UNAUTHENTICATED") && !$0.contains("ExpiredProviderToken")
                }.isEmpty)
            try await Self.waitUntilSettled(fixture.api.queue)
            #expect(try await fixture.api.queue.stats().total.counters["retried", default: 0] == 0)
        }
    }

    @Test("a stalled gateway times out and a refused connection is retried; both get the push later")
    func networkFailures() async throws {
        let refusing = try RefusingPort()
        // The timeout leaves the hook's answer time on a loaded machine (300 ms did not: it was sent again); the stall
        // outlasts it, and ends in a 201 of its own, as a real gateway's late answer would.
        try await Self.withFixture({ $0.requestTimeoutMs = 1_500 }) { fixture in
            let (hook, browser) = try await fixture.registerDevices(for: "ivan")
            fixture.gateway.script(browser, [.stall(.seconds(4))])
            let token = try await fixture.api.token(for: "ivan")
            let dead = try await fixture.api.send(
                .PUT, "/v1/devices/offline", bearer: token,
                json: #"{"platform": "webhook", "url": "http://127.0.0.1:\#(refusing.port)/hook"}"#)
            #expect(dead.status == 201)
            _ = try await fixture.notify("ivan", delayMs: 1_000)
            fixture.api.clock.advance(byMs: 1_100)
            try await fixture.gateway.waitForDeliveries(1)
            #expect(fixture.gateway.deliveries.map(\.target) == [hook])
            try await Self.waitUntilSettled(fixture.api.queue)  // the retry is scheduled before time moves on
            // Retried with the network back-off (5 s ± 20 %): only the devices that did not get it.
            fixture.api.clock.advance(byMs: 6_500)
            try await fixture.gateway.waitForDeliveries(2)
            #expect(fixture.gateway.deliveries.prefix(2).map(\.target) == [hook, browser])
            try await Self.waitUntilSettled(fixture.api.queue)
            #expect(try await fixture.api.queue.stats().total.counters["retried", default: 0] >= 1)
            #expect(fixture.gateway.deliveries(to: hook).count == 1, "the retry skips the device that got it")
            // The stalled push and its retry both reached the gateway (without the request timeout, only one would).
            #expect(fixture.gateway.requestsReceived >= 3, "the hook, the stalled browser push, and its retry")
        }
    }

    @Test("a dead letter replayed reaches the gateway, and only for the devices that did not get it")
    func replay() async throws {
        try await Self.withFixture { fixture in
            let (hook, browser) = try await fixture.registerDevices(for: "judy")
            fixture.gateway.script(hook, [.status(400)])
            _ = try await fixture.notify("judy", delayMs: 1_000)
            fixture.api.clock.advance(byMs: 1_100)
            try await fixture.gateway.waitForDeliveries(1)
            try await Self.waitUntilSettled(fixture.api.queue)
            #expect(try await fixture.api.queue.stats().total.dead == 1)
            #expect(try await fixture.api.queue.replayAll() == 1)
            try await fixture.gateway.waitForDeliveries(2)
            #expect(fixture.gateway.deliveries.map(\.target) == [browser, hook])
            try await Self.waitUntilSettled(fixture.api.queue)
            #expect(fixture.gateway.deliveries.count == 2)
        }
    }

    @Test("an open breaker defers a provider's pushes without using attempts, then one probe reopens the way")
    func breaker() async throws {
        try await Self.withFixture({
            $0.breakerFailures = 1
            $0.breakerOpenMs = 3_000
        }) { fixture in
            let (_, fcmA) = try await fixture.registerMobileDevices(for: "kim")
            fixture.gateway.script(fcmA, [.status(503)])
            _ = try await fixture.notify("kim", delayMs: 1_000)
            fixture.api.clock.advance(byMs: 1_100)
            // kim's APNs push goes; FCM answers 503 and opens the breaker.
            try await fixture.gateway.waitForDeliveries(1)
            try await Self.waitUntilSettled(fixture.api.queue)
            let (_, fcmB) = try await fixture.registerMobileDevices(for: "leo")
            _ = try await fixture.notify("leo", delayMs: 1_000)
            fixture.api.clock.advance(byMs: 1_100)
            try await fixture.gateway.waitForDeliveries(2)  // leo's APNs push; his FCM one is held back
            try await Self.waitUntilSettled(fixture.api.queue)
            #expect(fixture.gateway.deliveries(to: fcmB).isEmpty)
            // After the open time one probe goes (whichever of leo's deferred push and kim's retry, 10 s ± 20 %,
            // comes first), the other is held while it is out, and goes once the probe closed the breaker.
            fixture.api.clock.advance(byMs: 13_000)
            try await fixture.gateway.waitForDeliveries(3)
            try await Self.waitUntilSettled(fixture.api.queue)
            fixture.api.clock.advance(byMs: 1_000)
            try await fixture.gateway.waitForDeliveries(4)
            #expect(fixture.gateway.deliveries(to: fcmA).count == 1 && fixture.gateway.deliveries(to: fcmB).count == 1)
        }
    }

    @Test("two workers split the queue: every push exactly once")
    func twoWorkers() async throws {
        try await Self.withFixture { fixture in
            let clock = fixture.api.clock
            let second = try await PushWorkerService.make(
                queue: fixture.api.queue, subscriber: nil,
                configuration: PushWorkerConfiguration(allowLoopback: true), logger: testLogger("worker-2"),
                now: { Date(timeIntervalSince1970: Double(clock.nowMs) / 1_000) })
            let group = ServiceGroup(
                configuration: ServiceGroupConfiguration(services: [second], logger: testLogger("w2")))
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                var hooks: [String] = []
                for index in 0..<40 {
                    let user = "user\(index)"
                    let token = try await fixture.api.token(for: user)
                    let registered = try await fixture.api.send(
                        .PUT, "/v1/devices/hook", bearer: token,
                        json: #"{"platform": "webhook", "url": "\#(fixture.gatewayURL)/webhook/\#(user)"}"#)
                    try fixture.gateway.setSecret(try #require(try registered.object()["secret"] as? String), for: user)
                    _ = try await fixture.notify(user, delayMs: 1_000)
                    hooks.append(user)
                }
                fixture.api.clock.advance(byMs: 1_100)
                try await fixture.gateway.waitForDeliveries(40)
                try await Self.waitUntilSettled(fixture.api.queue)
                #expect(fixture.gateway.deliveries.map(\.target).sorted() == hooks.sorted())
                #expect(fixture.gateway.violations.isEmpty)
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
            }
        }
    }

    @Test("an ack after the claim but before the send drops the push")
    func ackedAfterClaim() async throws {
        // A long coalescing window holds the claimed job before its send, so the ack lands in between.
        try await Self.withFixture({ $0.coalesceWindowMs = 3_000 }) { fixture in
            let (hook, _) = try await fixture.registerDevices(for: "mallory")
            let token = try await fixture.api.token(for: "mallory")
            let sent = try await fixture.notify("mallory", delayMs: 1_000, collapse: "general")
            fixture.api.clock.advance(byMs: 1_100)
            let deadline = ContinuousClock.now + .seconds(20)
            while try await fixture.api.queue.stats().total.inFlight == 0, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))  // polling Redis for the claim
            }
            let ack = try await fixture.api.send(.POST, "/v1/ack", bearer: token, json: #"{"ids": ["\#(sent.event)"]}"#)
            #expect(try ack.object()["in_flight"] as? Int == 1, "\(ack.body)")
            try await Self.waitUntilSettled(fixture.api.queue)
            #expect(fixture.gateway.deliveries(to: hook).isEmpty)
            #expect(fixture.gateway.deliveries.isEmpty)
            #expect(try await fixture.api.queue.stats().total.counters["cancelled", default: 0] == 1)
        }
    }

    @Test("quiet hours that began after scheduling defer the push to their end, without using an attempt")
    func quietHoursAtSendTime() async throws {
        try await Self.withFixture { fixture in
            let (hook, _) = try await fixture.registerDevices(for: "nina")
            let token = try await fixture.api.token(for: "nina")
            // The test clock starts at 2023-11-14T22:13:20Z.
            _ = try await fixture.notify("nina", delayMs: 60_000)
            let quiet = try await fixture.api.send(
                .PUT, "/v1/preferences", bearer: token,
                json: #"{"quiet_hours": {"start": "22:00", "end": "23:00", "time_zone": "UTC"}}"#)
            #expect(quiet.status == 200)
            fixture.api.clock.advance(byMs: 60_100)
            try await Self.waitUntilSettled(fixture.api.queue)
            #expect(fixture.gateway.deliveries.isEmpty, "inside quiet hours")
            let stats = try await fixture.api.queue.stats().total
            #expect(stats.scheduledLater == 1 && stats.counters["retried", default: 0] == 0)
            fixture.api.clock.set(1_700_002_800_000 + 1_000)  // 23:00:01
            try await fixture.gateway.waitForDeliveries(2)
            #expect(fixture.gateway.deliveries(to: hook).count == 1)
        }
    }
}
