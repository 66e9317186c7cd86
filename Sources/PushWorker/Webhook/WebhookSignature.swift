import Crypto
import Foundation
import NotifyCore

/// Standard Webhooks signing (standardwebhooks.com): `webhook-signature: v1,<base64 HMAC-SHA256 of
/// "<id>.<timestamp>.<body>">` with a ``WebhookSecret``, so receivers can use any existing verifier library.
public enum WebhookSignature {
    /// How far a timestamp may be from the receiver's clock (the convention's default).
    public static let toleranceSeconds: Int64 = 300

    /// The `webhook-signature` value for a message.
    public static func sign(id: String, timestamp: Int64, body: [UInt8], secret: WebhookSecret) -> String {
        "v1," + Data(Self.mac(id: id, timestamp: timestamp, body: body, secret: secret)).base64EncodedString()
    }

    /// What a receiver checks: the timestamp is within the tolerance of `now`, and one of the space-separated
    /// `v1,` signatures matches (compared in constant time).
    public static func verify(
        id: String, timestamp: Int64, signatures: String, body: [UInt8], secret: WebhookSecret, now: Int64
    ) throws(WebhookSignatureError) {
        guard abs(now - timestamp) <= Self.toleranceSeconds else { throw .timestampOutOfTolerance }
        let expected = Self.mac(id: id, timestamp: timestamp, body: body, secret: secret)
        for candidate in signatures.split(separator: " ") where candidate.hasPrefix("v1,") {
            if let given = Data(base64Encoded: String(candidate.dropFirst(3))),
                APIKeyVerifier.constantTimeEquals(Array(given), expected)
            {
                return
            }
        }
        throw .noMatchingSignature
    }

    private static func mac(id: String, timestamp: Int64, body: [UInt8], secret: WebhookSecret) -> [UInt8] {
        var hmac = HMAC<SHA256>(key: SymmetricKey(data: secret.key))
        hmac.update(data: Array("\(id).\(timestamp).".utf8))
        hmac.update(data: body)
        return Array(hmac.finalize())
    }
}

public enum WebhookSignatureError: Error, Sendable, Hashable {
    case timestampOutOfTolerance
    case noMatchingSignature
}
