/// Rejects members a request type does not know: a typo such as `recipient` or `delayMs` must be an error, not
/// a silently ignored field.
struct AnyCodingKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }

    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

extension Decoder {
    func rejectUnknownKeys<Key: CodingKey & CaseIterable>(_ known: Key.Type) throws {
        let container = try self.container(keyedBy: AnyCodingKey.self)
        let names = Set(Key.allCases.map(\.stringValue))
        let unknown = container.allKeys.map(\.stringValue).filter { !names.contains($0) }.sorted()
        guard unknown.isEmpty else {
            throw UnknownMembersError(codingPath: self.codingPath.map(\.stringValue), members: unknown)
        }
    }
}

/// A request object had members its type does not define.
struct UnknownMembersError: Error {
    var codingPath: [String]
    var members: [String]

    var problem: Problem {
        let prefix = self.codingPath.isEmpty ? "" : self.codingPath.joined(separator: ".") + "."
        return .invalidRequest(
            "unknown member(s) \(self.members.joined(separator: ", "))", fields: self.members.map { prefix + $0 })
    }
}
