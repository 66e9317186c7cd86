import Crypto
import Foundation
import JWTKit
import NotifyCore
import Synchronization

/// RFC 8292 VAPID: identifies this server to Web Push services with an ES256 JWT in
/// `Authorization: vapid t=<JWT>, k=<base64url public key>`.
///
/// One token serves every endpoint of an origin (`aud`), so values are cached per origin: each is made valid for
/// 12 h (the RFC allows 24) and replaced after 1 h (Apple refuses more frequent changes), which also lets push
/// services cache their signature checks.
public final class VAPIDSigner: Sendable {
    /// The public key subscribers were created with (`applicationServerKey`), base64url, uncompressed.
    public let publicKey: String
    private let keys: JWTKeyCollection
    private let subject: String
    private let now: @Sendable () -> Date
    /// A lock, not an actor: every Web Push send reads it, and an actor would queue them all behind one another.
    /// Two sends that miss together both sign, and either value serves.
    private let cache = Mutex<[String: (value: String, renewAt: Date)]>([:])

    static let lifetime: TimeInterval = 12 * 3_600
    static let renewAfter: TimeInterval = 3_600

    /// - Parameters:
    ///   - subject: a contact URI, `mailto:` or `https:` (Apple refuses tokens without one).
    ///   - now: the clock (tests move it).
    public init(
        privateKey: P256.Signing.PrivateKey, subject: String, now: @escaping @Sendable () -> Date = { Date() }
    ) async throws(VAPIDError) {
        guard subject.hasPrefix("mailto:") || subject.hasPrefix("https:") else {
            throw VAPIDError("the VAPID subject must be a mailto: or https: URI")
        }
        let keys = JWTKeyCollection()
        do {
            await keys.add(ecdsa: try ES256PrivateKey(backing: privateKey))
        } catch {
            throw VAPIDError("the VAPID key is not a P-256 key: \(error)")
        }
        self.keys = keys
        self.publicKey = Base64URL.encode(privateKey.publicKey.x963Representation)
        self.subject = subject
        self.now = now
    }

    /// The `Authorization` value for a push to `endpoint`.
    public func authorization(for endpoint: URL) async throws(VAPIDError) -> String {
        guard let origin = Self.origin(of: endpoint) else {
            throw VAPIDError("the endpoint has no scheme and host: \(endpoint.absoluteString.prefix(64))")
        }
        let now = self.now()
        if let cached = self.cache.withLock({ $0[origin] }), now < cached.renewAt { return cached.value }
        let claims = VAPIDClaims(
            aud: origin, exp: Int64(now.addingTimeInterval(Self.lifetime).timeIntervalSince1970), sub: self.subject)
        let token: String
        do {
            token = try await self.keys.sign(claims)
        } catch {
            throw VAPIDError("signing failed: \(error)")
        }
        let value = "vapid t=\(token), k=\(self.publicKey)"
        self.cache.withLock { $0[origin] = (value, now.addingTimeInterval(Self.renewAfter)) }
        return value
    }

    /// `scheme://host[:port]`, the port only when it is not the scheme's default (RFC 6454 serialization).
    public static func origin(of url: URL) -> String? {
        guard let scheme = url.scheme?.lowercased(), let host = url.host?.lowercased(), !host.isEmpty else {
            return nil
        }
        let defaultPort = scheme == "https" ? 443 : scheme == "http" ? 80 : nil
        if let port = url.port, port != defaultPort { return "\(scheme)://\(host):\(port)" }
        return "\(scheme)://\(host)"
    }
}

/// The claims of a VAPID token.
struct VAPIDClaims: JWTPayload {
    var aud: String
    var exp: Int64
    var sub: String

    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

public struct VAPIDError: Error, Sendable, Hashable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
