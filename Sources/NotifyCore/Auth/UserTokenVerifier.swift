import AsyncHTTPClient
import Foundation
import JWTKit
import Logging
import NIOCore
import NIOHTTP1

/// Verifies app users' JWTs and returns the user id they carry.
///
/// The header's `alg` is checked against the allowed list before any key is chosen, and HMAC tokens are checked
/// only with the development secret, never with a JWKS key: so `alg: none` and the "HS256 signed with the RSA
/// public key" confusion both fail. Keys come from the issuer's JWKS, fetched again when its cache lifetime ends
/// (the issuer's `max-age`, within configured bounds: a key the issuer removed stops working then) and when a token
/// names an unknown `kid` (the issuer rotated its keys), at most once per
/// ``UserTokenConfiguration/jwksRefreshIntervalMs``. While the issuer is down, the last good set stays in use.
public actor UserTokenVerifier {
    private let configuration: UserTokenConfiguration
    private let httpClient: HTTPClient
    private let logger: Logger
    private let hmacKeys = JWTKeyCollection()
    private var hmacLoaded = false
    private var jwksKeys = JWTKeyCollection()
    private var knownKeyIDs: Set<String> = []
    private var lastFetch: ContinuousClock.Instant?
    private var keysExpireAt: ContinuousClock.Instant?
    private let now: @Sendable () -> ContinuousClock.Instant

    /// - Parameter now: the clock that ages the key set (tests move it instead of waiting).
    public init(
        configuration: UserTokenConfiguration, httpClient: HTTPClient = .shared, logger: Logger,
        now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }
    ) {
        self.configuration = configuration
        self.httpClient = httpClient
        self.logger = logger
        self.now = now
    }

    /// Fetches the JWKS now (at start), so the first request does not wait for it.
    public func prepare() async throws {
        if self.configuration.jwksURL != nil { try await self.fetchKeys() }
    }

    /// The user id of a valid token.
    public func verify(_ token: String) async throws(UserTokenError) -> String {
        try await self.verifyWithExpiry(token).user
    }

    /// The user id of a valid token and when the token stops being accepted (its `exp` plus the configured
    /// leeway), so long-lived connections can end when their token does.
    ///
    /// Only the key lookup runs on this actor (and, rarely, a JWKS fetch); the signature check and the claims run
    /// on the caller's executor, so a reconnect storm is verified on every core instead of queueing behind one
    /// actor (jwt-kit's own `verify` runs on its key collection's actor).
    public nonisolated func verifyWithExpiry(_ token: String) async throws(UserTokenError) -> (
        user: String, expiresAt: Date
    ) {
        let header = try Self.header(of: token)
        guard let algorithm = header.alg, algorithm.lowercased() != "none",
            self.configuration.algorithms.contains(algorithm)
        else {
            throw UserTokenError("token algorithm \(header.alg ?? "(missing)") is not allowed")
        }
        let claims: UserClaims
        do {
            let key = try await self.key(algorithm: algorithm, keyID: header.kid)
            claims = try Self.verifiedClaims(token, key: key)
        } catch let error as UserTokenError {
            throw error
        } catch {
            throw UserTokenError("token signature or format is invalid")
        }
        let acceptedUntil = (claims.exp ?? 0) + Double(self.configuration.leewaySeconds)
        return (try self.check(claims), Date(timeIntervalSince1970: acceptedUntil))
    }

    /// The signature checked with `key`, then the claims decoded.
    private nonisolated static func verifiedClaims(_ token: String, key: any JWTAlgorithm) throws -> UserClaims {
        let bytes = Array(token.utf8)
        guard let last = bytes.lastIndex(of: UInt8(ascii: ".")),
            let signature = Self.base64URLDecode(String(decoding: bytes[(last + 1)...], as: UTF8.self))
        else { throw UserTokenError("token is not a JWT") }
        guard try key.verify(signature, signs: bytes[..<last]) else {
            throw UserTokenError("token signature or format is invalid")
        }
        return try DefaultJWTParser().parse(bytes, as: UserClaims.self).payload
    }

    // MARK: Keys

    /// The key that must have signed a token with this header: HMAC tokens only with the development secret, others
    /// only with a key of the issuer's JWKS (fetched again as its cache lifetime or an unknown `kid` says).
    private func key(algorithm: String, keyID: String?) async throws -> any JWTAlgorithm {
        if algorithm.hasPrefix("HS") {
            guard let secret = self.configuration.hs256Secret else {
                throw UserTokenError("HS256 tokens are not enabled")
            }
            if !self.hmacLoaded {
                await self.hmacKeys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
                self.hmacLoaded = true
            }
            return try await self.hmacKeys.getKey(for: nil, alg: algorithm)
        }
        guard self.configuration.jwksURL != nil else { throw UserTokenError("no JWKS is configured") }
        guard let keyID else { throw UserTokenError("token has no kid") }
        let interval = Duration.milliseconds(self.configuration.jwksRefreshIntervalMs)
        let now = self.now()
        let mayFetch = self.lastFetch.map { now - $0 >= interval } ?? true
        var fetched = false
        if let expiry = self.keysExpireAt, now >= expiry, mayFetch {
            fetched = true
            do {
                try await self.fetchKeys()
            } catch {
                // The issuer is down: the last good set stays in use (fetchKeys logged it), tried again after
                // the refresh interval, for at most jwksMaxStaleMs: a key the issuer revoked must not stay valid
                // for as long as someone keeps us from reaching it.
            }
        }
        if let expiry = self.keysExpireAt, now >= expiry + .milliseconds(self.configuration.jwksMaxStaleMs) {
            throw UserTokenError("the token issuer's keys are unavailable")
        }
        if !self.knownKeyIDs.contains(keyID) {
            guard mayFetch, !fetched else { throw UserTokenError("token kid is unknown") }
            try await self.fetchKeys()
        }
        guard self.knownKeyIDs.contains(keyID) else { throw UserTokenError("token kid is unknown") }
        return try await self.jwksKeys.getKey(for: JWKIdentifier(string: keyID), alg: algorithm)
    }

    private func fetchKeys() async throws {
        guard let url = self.configuration.jwksURL else { return }
        self.lastFetch = self.now()
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Accept", value: "application/json")
        do {
            let response = try await self.httpClient.execute(request, timeout: .seconds(5))
            guard response.status == .ok else { throw UserTokenError("JWKS answered \(response.status.code)") }
            let body = try await response.body.collect(upTo: 1 << 20)
            let json = String(buffer: body)
            let keys = JWTKeyCollection()
            try await keys.add(jwksJSON: json)
            let set = try JSONDecoder().decode(JWKS.self, from: Data(json.utf8))
            self.jwksKeys = keys
            self.knownKeyIDs = Set(set.keys.compactMap { $0.keyIdentifier?.string })
            let lifetime = self.configuration.jwksCacheMs(cacheControl: response.headers.first(name: "Cache-Control"))
            self.keysExpireAt = self.lastFetch.map { $0.advanced(by: .milliseconds(lifetime)) }
            self.logger.info(
                "JWKS loaded", metadata: ["jwt.keys": "\(self.knownKeyIDs.count)", "jwt.cache_ms": "\(lifetime)"])
        } catch {
            self.logger.warning("JWKS fetch failed", metadata: ["jwt.jwks": "\(url)", "error": "\(error)"])
            throw UserTokenError("the token issuer's keys are unavailable")
        }
    }

    // MARK: Claims

    private nonisolated func check(_ claims: UserClaims) throws(UserTokenError) -> String {
        let now = Date().timeIntervalSince1970
        let leeway = Double(self.configuration.leewaySeconds)
        guard let exp = claims.exp else { throw UserTokenError("token has no exp") }
        guard now <= exp + leeway else { throw UserTokenError("token expired") }
        if let nbf = claims.nbf, now + leeway < nbf { throw UserTokenError("token is not valid yet") }
        if let issuer = self.configuration.issuer, claims.iss != issuer {
            throw UserTokenError("token issuer is not accepted")
        }
        if let audience = self.configuration.audience, !(claims.aud?.contains(audience) ?? false) {
            throw UserTokenError("token audience is not accepted")
        }
        let user: String? =
            switch self.configuration.userClaim {
            case "preferred_username": claims.preferredUsername
            case "user_id": claims.userID
            default: claims.sub
            }
        guard let user, !user.isEmpty else {
            throw UserTokenError("token has no \(self.configuration.userClaim) claim")
        }
        return user
    }

    private struct Header: Decodable {
        var alg: String?
        var kid: String?
    }

    private nonisolated static func header(of token: String) throws(UserTokenError) -> Header {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, token.utf8.count <= 16_384,
            let data = Self.base64URLDecode(String(parts[0])),
            let header = try? JSONDecoder().decode(Header.self, from: data)
        else {
            throw UserTokenError("token is not a JWT")
        }
        return header
    }

    private nonisolated static func base64URLDecode(_ text: String) -> Data? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        return Data(base64Encoded: base64)
    }
}

/// The claims we read from a user token. Checked by ``UserTokenVerifier`` (which knows the configuration)
/// after the signature.
struct UserClaims: JWTPayload {
    var sub: String?
    var iss: String?
    var aud: [String]?
    var exp: Double?
    var nbf: Double?
    var preferredUsername: String?
    var userID: String?

    enum CodingKeys: String, CodingKey {
        case sub, iss, aud, exp, nbf
        case preferredUsername = "preferred_username"
        case userID = "user_id"
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.sub = try container.decodeIfPresent(String.self, forKey: .sub)
        self.iss = try container.decodeIfPresent(String.self, forKey: .iss)
        // `aud` is a string or an array of strings (RFC 7519 §4.1.3).
        if let one = try? container.decodeIfPresent(String.self, forKey: .aud) {
            self.aud = [one]
        } else {
            self.aud = try container.decodeIfPresent([String].self, forKey: .aud)
        }
        self.exp = try container.decodeIfPresent(Double.self, forKey: .exp)
        self.nbf = try container.decodeIfPresent(Double.self, forKey: .nbf)
        self.preferredUsername = try container.decodeIfPresent(String.self, forKey: .preferredUsername)
        self.userID = try container.decodeIfPresent(String.self, forKey: .userID)
    }

    func verify(using algorithm: some JWTAlgorithm) async throws {}
}
