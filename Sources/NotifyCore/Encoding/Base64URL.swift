import Foundation

/// Base64url without padding (RFC 4648 §5): ids and keys that go into URLs, headers and Redis keys unchanged.
public enum Base64URL {
    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// Random bytes, encoded.
    public static func random(byteCount: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        return self.encode((0..<byteCount).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }
}

extension Base64URL {
    /// Decodes base64url with or without padding (plain base64's `+` and `/` are accepted too); `nil` if invalid.
    public static func decode(_ text: String) -> [UInt8]? {
        var standard = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        standard += String(repeating: "=", count: (4 - standard.count % 4) % 4)
        return Data(base64Encoded: standard).map(Array.init)
    }
}
