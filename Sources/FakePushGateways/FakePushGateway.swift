import Crypto
import Foundation
import Hummingbird
import JWTKit
import Logging
import NIOCore
import NotifyCore
import PushWorker
import ServiceLifecycle
import Synchronization

/// Stands in for the push services we cannot reach in tests and benchmarks (Web Push services, webhook receivers),
/// checking each request as strictly as the real service: Web Push needs `TTL`, `Content-Encoding: aes128gcm`, a
/// VAPID `Authorization` whose ES256 JWT verifies against its `k` with the endpoint's origin as `aud`, a `Topic` of
/// at most 32 base64url characters, and a body that decrypts with the subscriber's private key; a webhook needs a
/// Standard Webhooks signature that verifies with the device's secret. A request that fails a check is answered
/// 400 (Web Push) or 401 (webhook) and listed in ``violations``. Tests script answers per target: a status (with
/// `Retry-After`), a stall, or a dropped connection.
public final class FakePushGateway: Sendable {
    public struct Delivery: Sendable, Hashable {
        public var kind: String
        public var target: String
        /// The decrypted (Web Push) or plain (webhook) body.
        public var body: [UInt8]
        public var headers: [String: String]
        /// When it was accepted (ms since 1970).
        public var receivedAtMs: Int64 = Int64(Date().timeIntervalSince1970 * 1_000)

        public var json: [String: Any]? {
            (try? JSONSerialization.jsonObject(with: Data(self.body))) as? [String: Any]
        }
    }

    public enum Answer: Sendable {
        case status(Int, retryAfter: String? = nil, body: String = "")
        /// Holds the request this long before answering 201.
        case stall(Duration)
    }

    /// A Web Push subscriber: the browser's side of a subscription.
    public struct Subscriber: Sendable {
        public let privateKey: P256.KeyAgreement.PrivateKey
        public let auth: [UInt8]

        public init() {
            self.privateKey = P256.KeyAgreement.PrivateKey()
            self.auth = (0..<16).map { _ in UInt8.random(in: .min ... .max) }
        }

        /// `PushSubscription.toJSON().keys`.
        public var p256dh: String { Base64URL.encode(self.privateKey.publicKey.x963Representation) }
        public var authText: String { Base64URL.encode(self.auth) }
    }

    struct State {
        var deliveries: [Delivery] = []
        var violations: [String] = []
        var scripts: [String: [Answer]] = [:]
        var subscribers: [String: Subscriber] = [:]
        var secrets: [String: WebhookSecret] = [:]
        var waiters: [(id: UUID, count: Int, continuation: CheckedContinuation<Bool, Never>)] = []
        var apns: APNsAccount?
        var fcm: FCMAccount?
        var accessTokens: Set<String> = []
        var tokenGrants = 0
        var requests = 0
        var requestWaiters: [(count: Int, continuation: CheckedContinuation<Void, Never>)] = []
    }

    let state = Mutex(State())
    public let logger: Logger

    /// Whether accepted requests keep their bodies and headers (benchmarks keep only target and time).
    public let keepsBodies: Bool

    public init(logger: Logger = Logger(label: "fake-gateway"), keepsBodies: Bool = true) {
        self.logger = logger
        self.keepsBodies = keepsBodies
    }

    /// Registers a Web Push subscriber for `/webpush/<target>`; returns it for the device's subscription.
    public func addSubscriber(_ target: String) -> Subscriber {
        let subscriber = Subscriber()
        self.state.withLock { $0.subscribers[target] = subscriber }
        return subscriber
    }

    /// The secret `/webhook/<target>` verifies signatures with.
    public func setSecret(_ secret: String, for target: String) throws {
        let parsed = try WebhookSecret(secret)
        self.state.withLock { $0.secrets[target] = parsed }
    }

    /// The next answers for `target`, in order; once used up, requests are accepted (201 / 204).
    public func script(_ target: String, _ answers: [Answer]) {
        self.state.withLock { $0.scripts[target, default: []] += answers }
    }

    public var deliveries: [Delivery] { self.state.withLock { $0.deliveries } }

    /// Requests that reached a push route, answered or not yet (a stalled one counts at once).
    public var requestsReceived: Int { self.state.withLock { $0.requests } }

    /// Waits until at least `count` requests reached a push route; throws after `timeout`.
    public func waitForRequests(_ count: Int, timeout: Duration = .seconds(30)) async throws {
        try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                await withCheckedContinuation { continuation in
                    let done = self.state.withLock { state -> Bool in
                        if state.requests >= count { return true }
                        state.requestWaiters.append((count, continuation))
                        return false
                    }
                    if done { continuation.resume() }
                }
                return true
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return false
            }
            let first = try await group.next() ?? false
            if !first {
                // Release the waiter so the group can end.
                let waiters = self.state.withLock { state in
                    defer { state.requestWaiters = [] }
                    return state.requestWaiters.map(\.continuation)
                }
                for waiter in waiters { waiter.resume() }
                group.cancelAll()
                throw GatewayWaitTimeout(
                    expected: count, deliveries: self.requestsReceived, violations: self.violations)
            }
            group.cancelAll()
        }
    }

    /// Counts a request on a push route (before any scripted answer or check).
    func arrived() {
        let ready = self.state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.requests += 1
            let ready = state.requestWaiters.filter { $0.count <= state.requests }.map(\.continuation)
            state.requestWaiters.removeAll { $0.count <= state.requests }
            return ready
        }
        for continuation in ready { continuation.resume() }
    }

    /// Forgets what was accepted (between benchmark rounds).
    public func resetDeliveries() {
        self.state.withLock { $0.deliveries.removeAll(keepingCapacity: true) }
    }
    public var violations: [String] { self.state.withLock { $0.violations } }

    public func deliveries(to target: String) -> [Delivery] { self.deliveries.filter { $0.target == target } }

    /// Waits until at least `count` requests were accepted in all; throws after `timeout`.
    public func waitForDeliveries(_ count: Int, timeout: Duration = .seconds(30)) async throws {
        let id = UUID()
        let arrived = await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            let done = self.state.withLock { state -> Bool in
                if state.deliveries.count >= count { return true }
                state.waiters.append((id, count, continuation))
                return false
            }
            if done {
                continuation.resume(returning: true)
                return
            }
            Task {
                try? await Task.sleep(for: timeout)
                let waiter = self.state.withLock { state -> CheckedContinuation<Bool, Never>? in
                    guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                    return state.waiters.remove(at: index).continuation
                }
                waiter?.resume(returning: false)
            }
        }
        guard arrived else {
            throw GatewayWaitTimeout(expected: count, deliveries: self.deliveries.count, violations: self.violations)
        }
    }

    /// The routes, for an ``Application`` on a loopback port (`/webpush/:target`, `/webhook/:target`).
    public func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.post("webpush/:target") { request, context -> Response in
            let target = try context.parameters.require("target")
            self.arrived()
            if let answer = await self.scripted(target) { return answer }
            let body = try await request.body.collect(upTo: 1 << 20)
            switch await self.checkWebPush(request, body: Array(buffer: body), target: target) {
            case .failure(let violation):
                return self.reject(violation, status: .badRequest)
            case .success(let plaintext):
                self.accept(Delivery(kind: "webpush", target: target, body: plaintext, headers: Self.headers(request)))
                return Response(status: .created)
            }
        }
        self.addProviderRoutes(to: router)
        router.post("webhook/:target") { request, context -> Response in
            let target = try context.parameters.require("target")
            self.arrived()
            if let answer = await self.scripted(target) { return answer }
            let body = Array(buffer: try await request.body.collect(upTo: 1 << 20))
            if let violation = self.checkWebhook(request, body: body, target: target) {
                return self.reject(violation, status: .badRequest)
            }
            self.accept(Delivery(kind: "webhook", target: target, body: body, headers: Self.headers(request)))
            return Response(status: .noContent)
        }
        return router
    }

    // MARK: Checks

    private func checkWebPush(_ request: Request, body: [UInt8], target: String) async -> Result<[UInt8], Violation> {
        let headers = request.headers
        guard let ttl = headers[.init("ttl")!], Int(ttl) != nil else {
            return .failure("TTL header missing or not a number")
        }
        guard headers[.contentEncoding] == "aes128gcm" else { return .failure("Content-Encoding must be aes128gcm") }
        if let urgency = headers[.init("urgency")!], !["very-low", "low", "normal", "high"].contains(urgency) {
            return .failure("Urgency \(urgency) is not one of RFC 8030's")
        }
        if let topic = headers[.init("topic")!],
            topic.count > 32 || !topic.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) })
        {
            return .failure("Topic must be at most 32 characters of [A-Za-z0-9] (autopush's rule)")
        }
        guard let authorization = headers[.authorization], authorization.hasPrefix("vapid ") else {
            return .failure("Authorization: vapid t=..., k=... missing")
        }
        var token: String?
        var key: String?
        for part in authorization.dropFirst(6).split(separator: ",") {
            let trimmed = part.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("t=") { token = String(trimmed.dropFirst(2)) }
            if trimmed.hasPrefix("k=") { key = String(trimmed.dropFirst(2)) }
        }
        guard let token, let key, let keyBytes = Base64URL.decode(key),
            let publicKey = try? P256.Signing.PublicKey(x963Representation: keyBytes)
        else { return .failure("VAPID t or k missing or k is not a P-256 point") }
        let keys = JWTKeyCollection()
        do {
            await keys.add(ecdsa: try ES256PublicKey(backing: publicKey))
            let claims = try await keys.verify(token, as: VAPIDTestClaims.self)
            let host = request.head.authority ?? ""
            guard claims.aud.hasSuffix("://\(host)") else {
                return .failure("VAPID aud \(claims.aud) is not this origin \(host)")
            }
            let now = Date().timeIntervalSince1970
            guard claims.exp > now, claims.exp <= now + 86_400 else { return .failure("VAPID exp must be within 24 h") }
            guard claims.sub.hasPrefix("mailto:") || claims.sub.hasPrefix("https:") else {
                return .failure("VAPID sub must be mailto: or https:")
            }
        } catch {
            return .failure("VAPID JWT does not verify: \(error)")
        }
        guard let subscriber = self.state.withLock({ $0.subscribers[target] }) else {
            return .failure("no subscription \(target)")
        }
        do {
            return .success(
                try WebPushEncryption.decrypt(body, privateKey: subscriber.privateKey, auth: subscriber.auth))
        } catch {
            return .failure("the body does not decrypt with the subscriber's key: \(error)")
        }
    }

    private func checkWebhook(_ request: Request, body: [UInt8], target: String) -> Violation? {
        let headers = request.headers
        guard let id = headers[.init("webhook-id")!],
            let timestamp = headers[.init("webhook-timestamp")!].flatMap({ Int64($0) }),
            let signature = headers[.init("webhook-signature")!]
        else { return "webhook-id, webhook-timestamp and webhook-signature are required" }
        guard headers[.contentType] == "application/json" else { return "Content-Type must be application/json" }
        guard let secret = self.state.withLock({ $0.secrets[target] }) else {
            return Violation("no secret for \(target)")
        }
        do {
            try WebhookSignature.verify(
                id: id, timestamp: timestamp, signatures: signature, body: body, secret: secret,
                now: Int64(Date().timeIntervalSince1970))
            return nil
        } catch {
            return Violation("the signature does not verify: \(error)")
        }
    }

    // MARK: Answers

    func scripted(_ target: String) async -> Response? {
        let answer = self.state.withLock { state -> Answer? in
            guard var answers = state.scripts[target], !answers.isEmpty else { return nil }
            let next = answers.removeFirst()
            state.scripts[target] = answers
            return next
        }
        switch answer {
        case nil:
            return nil
        case .stall(let duration):
            try? await Task.sleep(for: duration)
            return nil
        case .status(let code, let retryAfter, let body):
            var response = Response(
                status: .init(code: code), body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
            if let retryAfter { response.headers[.retryAfter] = retryAfter }
            response.headers[.contentType] = "application/json"
            return response
        }
    }

    func accept(_ delivery: Delivery) {
        var delivery = delivery
        if !self.keepsBodies {
            delivery.body = []
            delivery.headers = [:]
        }
        let ready = self.state.withLock { state -> [CheckedContinuation<Bool, Never>] in
            state.deliveries.append(delivery)
            let count = state.deliveries.count
            let ready = state.waiters.filter { $0.count <= count }.map(\.continuation)
            state.waiters.removeAll { $0.count <= count }
            return ready
        }
        for continuation in ready { continuation.resume(returning: true) }
    }

    func reject(_ violation: Violation, status: HTTPResponse.Status, body: String = "") -> Response {
        self.state.withLock { $0.violations.append(violation.description) }
        self.logger.warning("fake gateway refused a request", metadata: ["violation": "\(violation.description)"])
        var response = Response(status: status, body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
        if !body.isEmpty { response.headers[.contentType] = "application/json" }
        return response
    }

    static func headers(_ request: Request) -> [String: String] {
        var headers: [String: String] = [:]
        for field in request.headers { headers[field.name.canonicalName] = field.value }
        return headers
    }
}

/// Deliveries did not arrive in time.
public struct GatewayWaitTimeout: Error, CustomStringConvertible {
    public var expected: Int
    public var deliveries: Int
    public var violations: [String]
    public var description: String {
        "expected \(self.expected) deliveries, got \(self.deliveries); violations: \(self.violations)"
    }
}

struct Violation: Error, ExpressibleByStringLiteral, CustomStringConvertible {
    var description: String
    init(stringLiteral value: String) { self.description = value }
    init(_ description: String) { self.description = description }
}

extension Result where Failure == Violation {
    static func failure(_ text: String) -> Self { .failure(Violation(text)) }
}

struct VAPIDTestClaims: JWTPayload {
    var aud: String
    var exp: Double
    var sub: String
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}
