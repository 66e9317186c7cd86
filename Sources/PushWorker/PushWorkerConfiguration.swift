import Configuration
import Crypto
import Foundation
import NotifyCore

/// Settings of the push workers (`push.*`). A provider without credentials is off on this worker: its devices are
/// skipped (counted as `notify_push_sends_total{outcome="unconfigured"}` and logged as a warning), and the job
/// finishes with the user's other devices.
public struct PushWorkerConfiguration: Sendable {
    /// Gateway requests in flight per process, over all providers.
    public var maxInFlight: Int
    /// Gateway requests in flight per process and provider.
    public var maxInFlightPerProvider: Int
    /// Longest one gateway request may take (connect, send, answer).
    public var requestTimeoutMs: Int
    /// Lets devices point at this machine (plain `http` there too); `notify dev` turns it on.
    public var allowLoopback: Bool
    /// A PEM file of certificate authorities trusted besides the system's (a private gateway, tests).
    public var caFile: String?
    /// How long the first push of a (user, collapse key) waits for others due with it, to send them as one.
    public var coalesceWindowMs: Int
    /// Consecutive failures (5xx, timeouts, credential faults) after which a provider's breaker opens.
    public var breakerFailures: Int
    /// How long an open breaker holds sends back before one probe may go.
    public var breakerOpenMs: Int
    public var apns: APNs?
    public var fcm: FCM?
    public var webPush: WebPush?

    /// APNs token authentication: the `.p8` key, its key id and the team id.
    public struct APNs: Sendable {
        public var keyPEM: String
        public var keyID: String
        public var teamID: String
        /// The `apns-topic` (bundle id) for devices registered without an `app_id`.
        public var defaultTopic: String?
        public var productionURL: String
        public var sandboxURL: String

        public init(
            keyPEM: String, keyID: String, teamID: String, defaultTopic: String? = nil,
            productionURL: String = "https://api.push.apple.com",
            sandboxURL: String = "https://api.sandbox.push.apple.com"
        ) {
            self.keyPEM = keyPEM
            self.keyID = keyID
            self.teamID = teamID
            self.defaultTopic = defaultTopic
            self.productionURL = productionURL
            self.sandboxURL = sandboxURL
        }
    }

    /// FCM HTTP v1: a service account's JSON key.
    public struct FCM: Sendable {
        public var serviceAccount: FCMServiceAccount
        public var baseURL: String

        public init(serviceAccount: FCMServiceAccount, baseURL: String = "https://fcm.googleapis.com") {
            self.serviceAccount = serviceAccount
            self.baseURL = baseURL
        }
    }

    /// Web Push: the VAPID key pair subscriptions were made with, and a contact.
    public struct WebPush: Sendable {
        public var vapidKey: P256.Signing.PrivateKey
        /// `mailto:` or `https:` contact URI.
        public var subject: String

        public init(vapidKey: P256.Signing.PrivateKey, subject: String) {
            self.vapidKey = vapidKey
            self.subject = subject
        }
    }

    public init(
        maxInFlight: Int = 1_024, maxInFlightPerProvider: Int = 512, requestTimeoutMs: Int = 10_000,
        allowLoopback: Bool = false, caFile: String? = nil, coalesceWindowMs: Int = 20, breakerFailures: Int = 20,
        breakerOpenMs: Int = 30_000, apns: APNs? = nil, fcm: FCM? = nil, webPush: WebPush? = nil
    ) {
        self.maxInFlight = maxInFlight
        self.maxInFlightPerProvider = maxInFlightPerProvider
        self.requestTimeoutMs = requestTimeoutMs
        self.allowLoopback = allowLoopback
        self.caFile = caFile
        self.coalesceWindowMs = coalesceWindowMs
        self.breakerFailures = breakerFailures
        self.breakerOpenMs = breakerOpenMs
        self.apns = apns
        self.fcm = fcm
        self.webPush = webPush
    }

    /// Reads `push.*` from `config` (scoped to `push`). `dev` turns loopback on unless set and makes up a VAPID
    /// key when none is configured.
    public init(config: ConfigReader, dev: Bool = false) throws {
        let d = PushWorkerConfiguration()
        self.init(
            maxInFlight: config.int(forKey: "maxInFlight", default: d.maxInFlight),
            maxInFlightPerProvider: config.int(forKey: "maxInFlightPerProvider", default: d.maxInFlightPerProvider),
            requestTimeoutMs: config.int(forKey: "requestTimeoutMs", default: d.requestTimeoutMs),
            allowLoopback: config.bool(forKey: "allowLoopback", default: dev),
            caFile: try TrustedAuthorities.file(config, key: "caFile", setting: "push.caFile"),
            coalesceWindowMs: config.int(forKey: "coalesceWindowMs", default: d.coalesceWindowMs),
            breakerFailures: config.int(forKey: "breakerFailures", default: d.breakerFailures),
            breakerOpenMs: config.int(forKey: "breakerOpenMs", default: d.breakerOpenMs))
        for (name, value) in [
            ("maxInFlight", self.maxInFlight), ("maxInFlightPerProvider", self.maxInFlightPerProvider),
            ("requestTimeoutMs", self.requestTimeoutMs), ("breakerFailures", self.breakerFailures),
            ("breakerOpenMs", self.breakerOpenMs),
        ] where value <= 0 {
            throw NotifyConfigError("push.\(name) must be positive, got \(value)")
        }
        if let keyPEM = try Self.secretText(config, inline: "apns.key", file: "apns.keyFile") {
            guard let keyID = config.string(forKey: "apns.keyID"), let teamID = config.string(forKey: "apns.teamID")
            else { throw NotifyConfigError("push.apns needs keyID and teamID with its key") }
            let defaults = APNs(keyPEM: "", keyID: "", teamID: "")
            self.apns = APNs(
                keyPEM: keyPEM, keyID: keyID, teamID: teamID, defaultTopic: config.string(forKey: "apns.topic"),
                productionURL: config.string(forKey: "apns.url", default: defaults.productionURL),
                sandboxURL: config.string(forKey: "apns.sandboxURL", default: defaults.sandboxURL))
        }
        if let json = try Self.secretText(config, inline: "fcm.serviceAccount", file: "fcm.serviceAccountFile") {
            self.fcm = FCM(
                serviceAccount: try FCMServiceAccount(json: json),
                baseURL: config.string(forKey: "fcm.url", default: "https://fcm.googleapis.com"))
        }
        let subject = config.string(forKey: "webPush.subject", default: "mailto:push@localhost")
        if let key = config.string(forKey: "webPush.vapidPrivateKey", isSecret: true) {
            self.webPush = WebPush(vapidKey: try Self.vapidKey(key), subject: subject)
        } else if dev {
            self.webPush = WebPush(vapidKey: P256.Signing.PrivateKey(), subject: subject)
        }
    }

    /// The egress policy devices' URLs are held to.
    public var egress: EgressPolicy { EgressPolicy(allowLoopback: self.allowLoopback) }

    /// A VAPID private key: PEM, or the 32-byte scalar in base64url (what `web-push generate-vapid-keys` prints).
    static func vapidKey(_ text: String) throws -> P256.Signing.PrivateKey {
        if text.contains("-----BEGIN") {
            return try P256.Signing.PrivateKey(pemRepresentation: text)
        }
        guard let raw = Base64URL.decode(text), raw.count == 32 else {
            throw NotifyConfigError("push.webPush.vapidPrivateKey must be a PEM or a 32-byte base64url key")
        }
        return try P256.Signing.PrivateKey(rawRepresentation: raw)
    }

    private static func secretText(_ config: ConfigReader, inline: String, file: String) throws -> String? {
        if let text = config.string(forKey: ConfigKey(inline), isSecret: true) { return text }
        guard let path = config.string(forKey: ConfigKey(file)) else { return nil }
        do {
            return try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw NotifyConfigError("push.\(file): cannot read \(path): \(error.localizedDescription)")
        }
    }
}
