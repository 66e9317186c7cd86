import Foundation

/// Builds JSON text by hand where the parts are already JSON (pre-rendered event members), so they are not
/// parsed and encoded again for every recipient or reader.
public enum JSONText {
    /// `text` as a JSON string literal, quotes included.
    public static func quoted(_ text: String) -> String {
        var out = "\""
        out.reserveCapacity(text.utf8.count + 2)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// Object members `"name":value` joined by commas, skipping absent values; values are JSON text already.
    public static func members(_ pairs: [(String, String?)]) -> String {
        pairs.compactMap { name, value in value.map { "\"\(name)\":\($0)" } }.joined(separator: ",")
    }

    /// Compact JSON of an encodable value.
    public static func encode(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}
