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
