import Foundation
import JWTKit

/// HS256 user tokens as an SSO would issue them, for servers configured with ``hs256Secret``.
public enum TestUserToken {
    public static let hs256Secret = "test-secret-test-secret-test-secret-0123"
    public static let issuer = "https://sso.test/realms/chat"
    public static let audience = "notify"

    /// A token of `user`, valid for `seconds` unless the claims say otherwise.
    public static func make(
        for user: String, issuer: String = Self.issuer, audience: String = Self.audience,
        expiresIn seconds: Double = 3_600, secret: String = Self.hs256Secret
    ) async throws -> String {
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        return try await keys.sign(
            Claims(sub: user, iss: issuer, aud: [audience], exp: Date().timeIntervalSince1970 + seconds))
    }

    /// The claims an SSO puts in a user token (signature checks only; the server under test checks the rest).
    public struct Claims: JWTPayload {
        public var sub: String
        public var iss: String
        public var aud: [String]
        public var exp: Double

        public init(sub: String, iss: String, aud: [String], exp: Double) {
            self.sub = sub
            self.iss = iss
            self.aud = aud
            self.exp = exp
        }

        public func verify(using algorithm: some JWTAlgorithm) async throws {}
    }
}
