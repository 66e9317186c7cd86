import Configuration
import Crypto
import Foundation

/// Checks backend API keys against configured SHA-256 digests, so the keys themselves are never stored in
/// configuration or memory dumps.
///
/// Several keys may be valid at once (rotation: add the new one, move callers over, remove the old one). Every
/// presented key is compared with every configured digest in constant time, so neither the result nor the time it
/// took tells an attacker which bytes matched.
public struct APIKeyVerifier: Sendable {
    /// A configured key: a name for logs and metrics, and the SHA-256 of the key.
    public struct Entry: Sendable, Hashable {
        public var name: String
        public var digest: [UInt8]
    }

    public let entries: [Entry]

    public init(entries: [Entry]) {
        self.entries = entries
    }

    /// Reads `key` from `config`: comma-separated `name:sha256hex` entries (e.g. `NOTIFY_AUTH_API_KEYS`).
    public init(config: ConfigReader, key: ConfigKey) throws(NotifyConfigError) {
        try self.init(entries: config.stringArray(forKey: key, isSecret: true, default: []))
    }

    /// Parses `name:sha256hex` entries (as printed by `notify keys generate`); empty entries are skipped.
    public init(entries: [String]) throws(NotifyConfigError) {
        var parsed: [Entry] = []
        for entry in entries where !entry.isEmpty {
            let parts = entry.split(separator: ":", maxSplits: 1).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty, let digest = Self.hexBytes(parts[1]), digest.count == 32 else {
                throw NotifyConfigError(
                    "API key entries must look like name:<64 hex characters of SHA-256>; got one that does not")
            }
            parsed.append(Entry(name: parts[0], digest: digest))
        }
        self.init(entries: parsed)
    }

    /// The name of the configured key that `presented` is, or `nil`.
    public func verify(_ presented: String) -> String? {
        let digest = Array(SHA256.hash(data: Array(presented.utf8)))
        var match: String?
        for entry in self.entries where Self.constantTimeEquals(digest, entry.digest) {
            match = match ?? entry.name
        }
        return match
    }

    /// A new random key and the config entry that accepts it, for `name`.
    public static func generate(name: String) -> (key: String, entry: String) {
        let key = "nk_" + Base64URL.random(byteCount: 32)
        let digest = Hex.encode(SHA256.hash(data: Array(key.utf8)))
        return (key, "\(name):\(digest)")
    }

    /// Compares two byte arrays of equal length without stopping at the first difference (also used for webhook
    /// signatures).
    public static func constantTimeEquals(_ left: [UInt8], _ right: [UInt8]) -> Bool {
        guard left.count == right.count else { return false }
        var difference: UInt8 = 0
        for index in left.indices {
            difference |= left[index] ^ right[index]
        }
        return difference == 0
    }

    private static func hexBytes(_ text: String) -> [UInt8]? {
        let characters = Array(text.lowercased().utf8)
        guard characters.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(characters.count / 2)
        for index in stride(from: 0, to: characters.count, by: 2) {
            guard let high = Self.nibble(characters[index]), let low = Self.nibble(characters[index + 1]) else {
                return nil
            }
            bytes.append(high << 4 | low)
        }
        return bytes
    }

    private static func nibble(_ character: UInt8) -> UInt8? {
        switch character {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): character - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): character - UInt8(ascii: "a") + 10
        default: nil
        }
    }
}
