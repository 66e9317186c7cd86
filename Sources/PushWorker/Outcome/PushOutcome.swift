/// The gateways a push goes through.
public enum PushProvider: String, Sendable, Hashable, CaseIterable {
    case apns, fcm, webPush = "webpush", webhook
}

/// What a gateway's answer means for the message and the device (PUSH_PROTOCOLS.md §5.1).
public enum PushOutcome: Sendable, Hashable {
    /// Delivered to the gateway.
    case delivered
    /// The device token or subscription is gone or invalid: remove the device; the message is finished for it.
    case removeDevice(reason: String)
    /// Try again later: after the gateway's `Retry-After` when it gave one, else the class's back-off.
    case retry(reason: String, retryAfterMs: Int?, backoff: PushBackoff)
    /// The provider credential (APNs provider token, FCM access token) expired: refresh it and retry once, now.
    case refreshCredentialsAndRetry(reason: String)
    /// The request can never succeed as sent (a sender bug, an oversized payload): dead-letter, no retry.
    case deadLetter(reason: String)
    /// A configuration or credential fault that fails every message of this provider: dead-letter and open the
    /// provider's circuit breaker; never remove devices for it.
    case breakCircuit(reason: String)

    public var reason: String? {
        switch self {
        case .delivered: nil
        case .removeDevice(let reason), .retry(let reason, _, _), .refreshCredentialsAndRetry(let reason),
            .deadLetter(let reason), .breakCircuit(let reason):
            reason
        }
    }
}

/// Back-off classes with their parameters (PUSH_PROTOCOLS.md §5.2): `delay(n) = min(cap, base × 2^(n−1))`, ±20 %
/// jitter, at most `maxAttempts`.
public struct PushBackoff: Sendable, Hashable {
    public var baseMs: Int
    public var capMs: Int
    public var maxAttempts: Int

    public static let apnsServer = PushBackoff(baseMs: 15 * 60_000, capMs: 60 * 60_000, maxAttempts: 3)
    public static let apnsRateLimited = PushBackoff(baseMs: 60_000, capMs: 15 * 60_000, maxAttempts: 5)
    public static let fcmRateLimited = PushBackoff(baseMs: 60_000, capMs: 30 * 60_000, maxAttempts: 6)
    public static let fcmServer = PushBackoff(baseMs: 10_000, capMs: 15 * 60_000, maxAttempts: 6)
    public static let webPushRateLimited = PushBackoff(baseMs: 60_000, capMs: 15 * 60_000, maxAttempts: 5)
    public static let webPushServer = PushBackoff(baseMs: 10_000, capMs: 15 * 60_000, maxAttempts: 5)
    public static let network = PushBackoff(baseMs: 5_000, capMs: 5 * 60_000, maxAttempts: 5)

    /// The delay before attempt `attempt + 1`, after `attempt` failed (1-based), at least `retryAfterMs`.
    public func delayMs(afterAttempt attempt: Int, retryAfterMs: Int? = nil, jitter: Double = .random(in: -0.2...0.2))
        -> Int
    {
        let exponent = min(max(attempt - 1, 0), 20)
        let plain = min(self.capMs, self.baseMs << exponent)
        let jittered = Int((Double(plain) * (1 + jitter)).rounded())
        return max(jittered, retryAfterMs ?? 0)
    }
}

/// A gateway's answer, as the classifier needs it.
public struct GatewayResponse: Sendable, Hashable {
    /// `nil` when no HTTP answer came (timeout, refused or reset connection, TLS failure).
    public var status: Int?
    /// APNs' `reason`, FCM's `error.status` (or its detail when it names the token), a Web Push service's error
    /// code; empty when none.
    public var reason: String
    public var retryAfterMs: Int?

    public init(status: Int?, reason: String = "", retryAfterMs: Int? = nil) {
        self.status = status
        self.reason = reason
        self.retryAfterMs = retryAfterMs
    }
}

extension PushOutcome {
    /// Classifies `response` from `provider` (PUSH_PROTOCOLS.md §5.1).
    public static func classify(_ response: GatewayResponse, from provider: PushProvider) -> PushOutcome {
        guard let status = response.status else {
            return .retry(
                reason: "no answer: \(response.reason)", retryAfterMs: nil, backoff: .network)
        }
        let reason = response.reason.isEmpty ? "HTTP \(status)" : "HTTP \(status) \(response.reason)"
        if (200..<300).contains(status) { return .delivered }
        switch provider {
        case .apns: return Self.apns(status, response.reason, reason, response.retryAfterMs)
        case .fcm: return Self.fcm(status, response.reason, reason, response.retryAfterMs)
        case .webPush: return Self.web(status, response.reason, reason, response.retryAfterMs)
        case .webhook: return Self.webhook(status, reason, response.retryAfterMs)
        }
    }

    private static func apns(_ status: Int, _ code: String, _ reason: String, _ retryAfter: Int?) -> PushOutcome {
        switch (status, code) {
        case (410, _), (400, "BadDeviceToken"), (400, "DeviceTokenNotForTopic"):
            return .removeDevice(reason: reason)
        case (403, "ExpiredProviderToken"):
            return .refreshCredentialsAndRetry(reason: reason)
        case (429, "TooManyProviderTokenUpdates"):
            return .retry(reason: reason, retryAfterMs: max(retryAfter ?? 0, 30_000), backoff: .apnsRateLimited)
        case (429, _):
            return .retry(reason: reason, retryAfterMs: retryAfter, backoff: .apnsRateLimited)
        case (400, "IdleTimeout"), (503, "Shutdown"):
            return .retry(reason: reason, retryAfterMs: retryAfter, backoff: .network)
        case (500...599, _):
            return .retry(reason: reason, retryAfterMs: retryAfter, backoff: .apnsServer)
        case (403, "Forbidden"):
            // Not allowed for this device's request: its problem (dead letter, for an operator).
            return .deadLetter(reason: reason)
        case (403, _):
            // InvalidProviderToken, MissingProviderToken, BadCertificate: the worker's credentials. Also
            // BadEnvironmentKey(Id)InToken and BadCertificateEnvironment: the worker's key or certificate is not
            // valid for that environment. The breaker is per environment and topic, so it holds back only those
            // pushes (without using attempts for the first hour), and they go out once the key is fixed instead
            // of each becoming a dead letter to replay.
            return .breakCircuit(reason: reason)
        default:
            return .deadLetter(reason: reason)
        }
    }

    private static func fcm(_ status: Int, _ code: String, _ reason: String, _ retryAfter: Int?) -> PushOutcome {
        // The FCM error code decides wherever it appears: the status it comes with varies (firebase-admin's own
        // tests carry UNREGISTERED under 400).
        switch code {
        case "UNREGISTERED", "SENDER_ID_MISMATCH": return .removeDevice(reason: reason)
        case "QUOTA_EXCEEDED": return .retry(reason: reason, retryAfterMs: retryAfter, backoff: .fcmRateLimited)
        case "UNAVAILABLE", "INTERNAL": return .retry(reason: reason, retryAfterMs: retryAfter, backoff: .fcmServer)
        case "THIRD_PARTY_AUTH_ERROR", "APNS_AUTH_ERROR": return .breakCircuit(reason: reason)
        case "UNSPECIFIED_ERROR": return .retry(reason: reason, retryAfterMs: retryAfter, backoff: .network)
        default: break
        }
        switch (status, code) {
        case (404, "UNREGISTERED"), (403, "SENDER_ID_MISMATCH"):
            return .removeDevice(reason: reason)
        case (400, let code) where code.contains("registration token"):
            return .removeDevice(reason: reason)
        case (401, "UNAUTHENTICATED"):
            return .refreshCredentialsAndRetry(reason: reason)
        case (401, _), (403, _), (404, _):
            // THIRD_PARTY_AUTH_ERROR, PERMISSION_DENIED, a wrong project: keep the tokens.
            return .breakCircuit(reason: reason)
        case (429, _):
            return .retry(reason: reason, retryAfterMs: retryAfter, backoff: .fcmRateLimited)
        case (500...599, _):
            return .retry(reason: reason, retryAfterMs: retryAfter, backoff: .fcmServer)
        default:
            return .deadLetter(reason: reason)
        }
    }

    /// A webhook receiver is the app's own server: only 410 Gone removes the device, and no answer of one
    /// receiver opens anything for the others (breakers are per host).
    private static func webhook(_ status: Int, _ reason: String, _ retryAfter: Int?) -> PushOutcome {
        switch status {
        case 410: .removeDevice(reason: reason)
        case 408, 429: .retry(reason: reason, retryAfterMs: retryAfter, backoff: .webPushRateLimited)
        case 500...599: .retry(reason: reason, retryAfterMs: retryAfter, backoff: .webPushServer)
        default: .deadLetter(reason: reason)  // 3xx (never followed), other 4xx: the receiver refuses it
        }
    }

    private static func web(_ status: Int, _ code: String, _ reason: String, _ retryAfter: Int?) -> PushOutcome {
        switch (status, code) {
        case (404, _), (410, _), (401, "VapidPkHashMismatch"), (403, "VapidPkHashMismatch"):
            return .removeDevice(reason: reason)
        case (401, _), (403, _):
            // Push services are shared by every subscriber (fcm.googleapis.com, Mozilla's, Apple's): a refusal
            // is about this subscription (made under another VAPID key, say), not grounds to hold back the rest.
            return .deadLetter(reason: reason)
        case (429, _):
            return .retry(reason: reason, retryAfterMs: retryAfter, backoff: .webPushRateLimited)
        case (500...599, _):
            return .retry(reason: reason, retryAfterMs: retryAfter, backoff: .webPushServer)
        default:
            // 3xx (redirects are never followed), 400 and 413: a sender bug or an oversized payload.
            return .deadLetter(reason: reason)
        }
    }
}
