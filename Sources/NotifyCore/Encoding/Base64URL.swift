import Foundation

/// Base64url without padding (RFC 4648 §5): ids and keys that go into URLs, headers and Redis keys unchanged.
public enum Base64URL {
    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        // Standard base64, then the URL-safe alphabet byte by byte (no string searching on the hot path).
        var encoded = Array(Data(bytes).base64EncodedData())
        while encoded.last == UInt8(ascii: "=") { encoded.removeLast() }
        for index in encoded.indices {
            switch encoded[index] {
            case UInt8(ascii: "+"): encoded[index] = UInt8(ascii: "-")
            case UInt8(ascii: "/"): encoded[index] = UInt8(ascii: "_")
            default: break
            }
        }
        return String(decoding: encoded, as: UTF8.self)
    }

    /// Random bytes, encoded. Eight bytes per draw from the system generator (each draw is a `getrandom` call).
    public static func random(byteCount: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        var bytes: [UInt8] = []
        bytes.reserveCapacity(byteCount + 7)
        while bytes.count < byteCount {
            withUnsafeBytes(of: generator.next() as UInt64) { bytes.append(contentsOf: $0) }
        }
        return self.encode(bytes.prefix(byteCount))
    }

    /// Decodes base64url with or without padding (plain base64's `+` and `/` are accepted too); `nil` if invalid.
    public static func decode(_ text: String) -> [UInt8]? {
        var standard = Array(text.utf8)
        for index in standard.indices {
            switch standard[index] {
            case UInt8(ascii: "-"): standard[index] = UInt8(ascii: "+")
            case UInt8(ascii: "_"): standard[index] = UInt8(ascii: "/")
            default: break
            }
        }
        standard += repeatElement(UInt8(ascii: "="), count: (4 - standard.count % 4) % 4)
        return Data(base64Encoded: Data(standard)).map(Array.init)
    }
}
