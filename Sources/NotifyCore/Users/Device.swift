import Foundation

/// One app installation that can receive pushes, as registered by the app (`PUT /v1/devices/{id}`).
public struct Device: Codable, Sendable, Hashable {
    public enum Platform: String, Codable, Sendable, CaseIterable {
        case apns
        case fcm
        case webpush
        case webhook
    }

    /// A Web Push subscription (RFC 8030/8291), as a browser's `PushSubscription.toJSON()` gives it.
    public struct WebPushSubscription: Codable, Sendable, Hashable {
        public struct Keys: Codable, Sendable, Hashable {
            public var p256dh: String
            public var auth: String

            public init(p256dh: String, auth: String) {
                self.p256dh = p256dh
                self.auth = auth
            }
        }

        public var endpoint: String
        public var keys: Keys

        public init(endpoint: String, keys: Keys) {
            self.endpoint = endpoint
            self.keys = keys
        }
    }

    public var platform: Platform
    /// APNs device token (hex) or FCM registration token.
    public var token: String?
    public var subscription: WebPushSubscription?
    /// Webhook target (https).
    public var url: String?
    /// App id: the APNs topic (bundle id) or the FCM/Web Push app, so one user may have several apps.
    public var appID: String?
    /// APNs only: `production` (default) or `sandbox`.
    public var environment: String?
    /// BCP 47 language tag for localized pushes.
    public var locale: String?
    /// Webhook only: the Standard Webhooks signing secret (`whsec_…`). Set by the backend, or generated at
    /// registration and returned once; listings leave it out (``redacted``).
    public var secret: String?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case platform, token, subscription, url, locale, environment, secret
        case appID = "app_id"
    }

    public init(
        platform: Platform, token: String? = nil, subscription: WebPushSubscription? = nil, url: String? = nil,
        appID: String? = nil, environment: String? = nil, locale: String? = nil, secret: String? = nil
    ) {
        self.platform = platform
        self.token = token
        self.subscription = subscription
        self.url = url
        self.appID = appID
        self.environment = environment
        self.locale = locale
        self.secret = secret
    }

    public init(from decoder: any Decoder) throws {
        // A request must not carry members we do not know; a stored device may (written by a newer version).
        if decoder.userInfo[Self.storedKey] as? Bool != true {
            try decoder.rejectUnknownKeys(CodingKeys.self)
        }
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.platform = try container.decode(Platform.self, forKey: .platform)
        self.token = try container.decodeIfPresent(String.self, forKey: .token)
        self.subscription = try container.decodeIfPresent(WebPushSubscription.self, forKey: .subscription)
        self.url = try container.decodeIfPresent(String.self, forKey: .url)
        self.appID = try container.decodeIfPresent(String.self, forKey: .appID)
        self.environment = try container.decodeIfPresent(String.self, forKey: .environment)
        self.locale = try container.decodeIfPresent(String.self, forKey: .locale)
        self.secret = try container.decodeIfPresent(String.self, forKey: .secret)
    }

    /// Set in a decoder's `userInfo` to read a device as stored (members it does not know are ignored). So that a
    /// rolling upgrade is safe, a member added to `Device` must be one an older version may ignore.
    public static let storedKey = CodingUserInfoKey(rawValue: "notify.storedDevice")!

    /// The device without its secret, as listings show it.
    public var redacted: Device {
        var device = self
        device.secret = nil
        return device
    }

    /// The URL pushes to this device go to, when the app supplied it (Web Push endpoint, webhook).
    public var targetURL: String? {
        switch self.platform {
        case .webpush: self.subscription?.endpoint
        case .webhook: self.url
        case .apns, .fcm: nil
        }
    }

    /// Checks the fields the platform needs, and that an app-supplied URL is one `egress` would send to; returns
    /// what is wrong (field, reason) or `nil`. Host names are checked again, resolved, at every send.
    public func problem(egress: EgressPolicy = EgressPolicy()) -> (field: String, reason: String)? {
        switch self.platform {
        case .apns:
            guard let token, (64...200).contains(token.count), token.allSatisfy(\.isHexDigit) else {
                return ("token", "an APNs token is 64-200 hex digits")
            }
            if let environment, !["production", "sandbox"].contains(environment) {
                return ("environment", "must be production or sandbox")
            }
        case .fcm:
            guard let token, (1...4_096).contains(token.utf8.count), !token.contains(where: \.isWhitespace) else {
                return ("token", "an FCM registration token is 1-4096 characters without spaces")
            }
        case .webpush:
            guard let subscription else { return ("subscription", "a Web Push device needs its subscription") }
            if let reason = Self.egressProblem(subscription.endpoint, egress) {
                return ("subscription.endpoint", reason)
            }
            guard Self.decodedLength(subscription.keys.p256dh) == 65 else {
                return ("subscription.keys.p256dh", "must be a base64url P-256 public key (65 bytes)")
            }
            guard Self.decodedLength(subscription.keys.auth) == 16 else {
                return ("subscription.keys.auth", "must be a base64url 16-byte secret")
            }
        case .webhook:
            guard let url else { return ("url", "a webhook needs an https URL") }
            if let reason = Self.egressProblem(url, egress) { return ("url", reason) }
            if let secret, (try? WebhookSecret(secret)) == nil {
                return ("secret", WebhookSecretError().description)
            }
        }
        if self.platform != .webhook, self.secret != nil { return ("secret", "only webhook devices have a secret") }
        for (field, value, limit) in [("app_id", self.appID, 200), ("locale", self.locale, 35)] {
            if let value, value.isEmpty || value.utf8.count > limit { return (field, "must be 1-\(limit) bytes") }
        }
        return nil
    }

    private static func egressProblem(_ text: String, _ egress: EgressPolicy) -> String? {
        guard text.utf8.count <= 2_048, let url = URL(string: text) else { return "must be an https URL" }
        do {
            try egress.checkURL(url)
            return nil
        } catch {
            return "is refused: \(error.description)"
        }
    }

    private static func decodedLength(_ base64URL: String) -> Int? {
        var text = base64URL.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        text += String(repeating: "=", count: (4 - text.count % 4) % 4)
        return Data(base64Encoded: text)?.count
    }
}
