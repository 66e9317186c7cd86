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
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        return try await keys.sign(Claims(sub: user, exp: Date().timeIntervalSince1970 + validForSeconds))
    }
}
