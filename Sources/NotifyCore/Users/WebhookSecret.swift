import Foundation

/// A webhook device's signing secret in the Standard Webhooks form, `whsec_<base64>` (standardwebhooks.com), so
/// receivers configure it in any existing verifier library.
///
/// HMAC signing needs the key itself, so it is stored as is with the device (a hash could not sign); it is
/// returned once, when generated at registration, and never listed again.
public struct WebhookSecret: Sendable, Hashable {
    /// The raw key bytes (24 to 64).
    public let key: [UInt8]

    /// Parses `whsec_<base64>` (the prefix is optional, as the libraries accept it).
    public init(_ text: String) throws(WebhookSecretError) {
        let encoded = text.hasPrefix("whsec_") ? String(text.dropFirst(6)) : text
        guard let key = Data(base64Encoded: encoded), (24...64).contains(key.count) else {
            throw WebhookSecretError()
        }
        self.key = Array(key)
    }

    private init(key: [UInt8]) {
        self.key = key
    }

    /// A new random 32-byte secret.
    public static func generate() -> WebhookSecret {
        var generator = SystemRandomNumberGenerator()
        return WebhookSecret(key: (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
    }

    /// `whsec_<base64>`, the form the backend stores and receivers configure.
    public var text: String { "whsec_" + Data(self.key).base64EncodedString() }
}

public struct WebhookSecretError: Error, Sendable, Hashable, CustomStringConvertible {
    public var description: String { "a webhook secret is whsec_ followed by 24-64 bytes in base64" }
}
