import Foundation
import JWTKit

/// Mints HS256 user tokens with the development secret, so `notify dev` can hand out working tokens without an
/// SSO. Never used when a JWKS is configured.
public enum DevTokenMinter {
    private struct Claims: JWTPayload {
        var sub: String
        var exp: Double
        func verify(using algorithm: some JWTAlgorithm) async throws {}
    }

    public static func token(for user: String, secret: String, validForSeconds: Double = 86_400) async throws -> String
    {
        try await Self.tokens(for: [user], secret: secret, validForSeconds: validForSeconds)[0]
    }

    /// One token per user, signed with one key (benchmarks mint tens of thousands).
    public static func tokens(for users: [String], secret: String, validForSeconds: Double = 86_400) async throws
        -> [String]
    {
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        let expires = Date().timeIntervalSince1970 + validForSeconds
        var tokens: [String] = []
        tokens.reserveCapacity(users.count)
        for user in users { tokens.append(try await keys.sign(Claims(sub: user, exp: expires))) }
        return tokens
    }
}
