/// Rejects members a request type does not know: a typo such as `recipient` or `delayMs` must be an error, not
/// a silently ignored field.
public struct AnyCodingKey: CodingKey {
    public var stringValue: String
    public var intValue: Int? { nil }

    public init(stringValue: String) { self.stringValue = stringValue }
    public init?(intValue: Int) { nil }
}

extension Decoder {
    public func rejectUnknownKeys<Key: CodingKey & CaseIterable>(_ known: Key.Type) throws {
        let container = try self.container(keyedBy: AnyCodingKey.self)
        let names = Set(Key.allCases.map(\.stringValue))
        let unknown = container.allKeys.map(\.stringValue).filter { !names.contains($0) }.sorted()
        guard unknown.isEmpty else {
            throw UnknownMembersError(codingPath: self.codingPath.map(\.stringValue), members: unknown)
        }
    }
}

/// A request object had members its type does not define.
public struct UnknownMembersError: Error, Sendable {
    public var codingPath: [String]
    public var members: [String]
}
