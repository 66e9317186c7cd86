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
        // Known keys parse as `Key` (a switch over the names): no set of names to build per request.
        guard container.allKeys.contains(where: { Key(stringValue: $0.stringValue) == nil }) else { return }
        let unknown = container.allKeys.map(\.stringValue).filter { Key(stringValue: $0) == nil }.sorted()
        throw UnknownMembersError(codingPath: self.codingPath.map(\.stringValue), members: unknown)
    }
}

/// A request object had members its type does not define.
public struct UnknownMembersError: Error, Sendable {
    public var codingPath: [String]
    public var members: [String]
}
