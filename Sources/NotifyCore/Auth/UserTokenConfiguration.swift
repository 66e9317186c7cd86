import Configuration
import Foundation

/// How app users' JWTs are checked: against an OIDC issuer's JWKS (e.g. a Keycloak realm's certs), or, for
/// development, a shared HS256 secret.
public struct UserTokenConfiguration: Sendable {
    /// URL of the issuer's JSON Web Key Set, fetched at start, again when its cache lifetime ends, and when a token
    /// names an unknown `kid`.
    public var jwksURL: String?
    /// Required `iss` (e.g. `https://sso.example.com/realms/chat`); unchecked only when not set and no JWKS is used.
    public var issuer: String?
    /// Required `aud` (one of the token's audiences).
    public var audience: String?
    /// Development only: accepts HS256 tokens signed with this secret (at least 32 bytes).
    public var hs256Secret: String?
    /// Algorithms accepted; `none` never is, and HS* only with ``hs256Secret``.
    public var algorithms: Set<String>
    /// Clock skew tolerated on `exp` and `nbf`.
    public var leewaySeconds: Int
    /// The claim that holds the user id: `sub` (default), `preferred_username` or `user_id`.
    public var userClaim: String
    /// Shortest time between two JWKS fetches caused by unknown `kid`s, so forged tokens cannot hammer the issuer.
    public var jwksRefreshIntervalMs: Int
    /// Bounds on how long a fetched key set is used before it is fetched again: the issuer's `Cache-Control:
    /// max-age` (5 minutes when it gives none, the minimum with `no-cache`/`no-store`), clamped to these. A key
    /// the issuer removed is refused at the latest this long after its removal.
    public var jwksMinCacheMs: Int
    public var jwksMaxCacheMs: Int
    /// How long past its cache lifetime a key set stays in use while the issuer cannot be reached; after that
    /// JWKS tokens are refused, so blocking the issuer cannot keep a revoked key valid.
    public var jwksMaxStaleMs: Int

    public static let userClaims: Set<String> = ["sub", "preferred_username", "user_id"]

    public init(
        jwksURL: String? = nil, issuer: String? = nil, audience: String? = nil, hs256Secret: String? = nil,
        algorithms: Set<String> = ["RS256", "ES256"], leewaySeconds: Int = 30, userClaim: String = "sub",
        jwksRefreshIntervalMs: Int = 10_000, jwksMinCacheMs: Int = 60_000, jwksMaxCacheMs: Int = 3_600_000,
        jwksMaxStaleMs: Int = 6 * 3_600_000
    ) {
        self.jwksURL = jwksURL
        self.issuer = issuer
        self.audience = audience
        self.hs256Secret = hs256Secret
        self.algorithms = hs256Secret == nil ? algorithms : algorithms.union(["HS256"])
        self.leewaySeconds = leewaySeconds
        self.userClaim = userClaim
        self.jwksRefreshIntervalMs = jwksRefreshIntervalMs
        self.jwksMinCacheMs = jwksMinCacheMs
        self.jwksMaxCacheMs = jwksMaxCacheMs
        self.jwksMaxStaleMs = jwksMaxStaleMs
    }

    /// Reads the settings from `config` (scoped to `auth.jwt`).
    public init(config: ConfigReader) throws(NotifyConfigError) {
        let d = UserTokenConfiguration()
        self.init(
            jwksURL: config.string(forKey: "jwksURL"),
            issuer: config.string(forKey: "issuer"),
            audience: config.string(forKey: "audience"),
            hs256Secret: config.string(forKey: "hs256Secret", isSecret: true),
            algorithms: Set(config.stringArray(forKey: "algorithms", default: Array(d.algorithms))),
            leewaySeconds: config.int(forKey: "leewaySeconds", default: d.leewaySeconds),
            userClaim: config.string(forKey: "userClaim", default: d.userClaim),
            jwksRefreshIntervalMs: config.int(forKey: "jwksRefreshIntervalMs", default: d.jwksRefreshIntervalMs),
            jwksMinCacheMs: config.int(forKey: "jwksMinCacheMs", default: d.jwksMinCacheMs),
            jwksMaxCacheMs: config.int(forKey: "jwksMaxCacheMs", default: d.jwksMaxCacheMs),
            jwksMaxStaleMs: config.int(forKey: "jwksMaxStaleMs", default: d.jwksMaxStaleMs))
        try self.validate()
    }

    public func validate() throws(NotifyConfigError) {
        if let secret = self.hs256Secret, secret.utf8.count < 32 {
            throw NotifyConfigError("auth.jwt.hs256Secret must be at least 32 bytes")
        }
        if self.jwksURL != nil, self.issuer == nil {
            throw NotifyConfigError("auth.jwt.issuer is required with auth.jwt.jwksURL")
        }
        if self.algorithms.contains(where: { $0.lowercased() == "none" }) {
            throw NotifyConfigError("auth.jwt.algorithms must not contain none")
        }
        guard Self.userClaims.contains(self.userClaim) else {
            throw NotifyConfigError("auth.jwt.userClaim must be one of \(Self.userClaims.sorted())")
        }
        guard self.jwksMinCacheMs >= 0, self.jwksMaxCacheMs >= self.jwksMinCacheMs else {
            throw NotifyConfigError("auth.jwt.jwksMinCacheMs must be between 0 and auth.jwt.jwksMaxCacheMs")
        }
        guard (0...600).contains(self.leewaySeconds) else {
            throw NotifyConfigError("auth.jwt.leewaySeconds must be between 0 and 600")
        }
    }

    /// Whether any way to check user tokens is configured.
    public var isConfigured: Bool { self.jwksURL != nil || self.hs256Secret != nil }
}

extension UserTokenConfiguration {
    /// How long a key set fetched with this `Cache-Control` header is used: `max-age` (5 minutes without one, the
    /// minimum with `no-cache` or `no-store`), clamped to ``jwksMinCacheMs``...``jwksMaxCacheMs``.
    public func jwksCacheMs(cacheControl: String?) -> Int {
        var lifetime = 300_000
        for directive in (cacheControl ?? "").lowercased().split(separator: ",") {
            let parts = directive.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            switch parts.first {
            case "no-cache", "no-store": lifetime = 0
            case "max-age" where parts.count == 2:
                if let seconds = Int(parts[1].trimmingCharacters(in: CharacterSet(charactersIn: "\""))) {
                    lifetime = seconds.multipliedReportingOverflow(by: 1000).overflow ? Int.max : seconds * 1000
                }
            default: break
            }
        }
        return min(max(lifetime, self.jwksMinCacheMs), self.jwksMaxCacheMs)
    }
}
