/// A Redis stream entry id, `<milliseconds>-<sequence>`: the id of an inbox event and its resume point.
public struct StreamID: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var milliseconds: UInt64
    public var sequence: UInt64

    public init(milliseconds: UInt64, sequence: UInt64) {
        self.milliseconds = milliseconds
        self.sequence = sequence
    }

    /// Parses `ms-seq` (or a bare `ms`, meaning sequence 0); `nil` for anything else.
    public init?(_ text: String) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isASCII) }),
            let milliseconds = UInt64(parts[0])
        else { return nil }
        var sequence: UInt64 = 0
        if parts.count == 2 {
            guard let parsed = UInt64(parts[1]) else { return nil }
            sequence = parsed
        }
        self.init(milliseconds: milliseconds, sequence: sequence)
    }

    public var description: String { "\(self.milliseconds)-\(self.sequence)" }

    public static func < (lhs: StreamID, rhs: StreamID) -> Bool {
        (lhs.milliseconds, lhs.sequence) < (rhs.milliseconds, rhs.sequence)
    }

    /// The id as one sorted-set score, exact in a double: `ms * 1000 + min(seq, 999)`.
    ///
    /// More than 999 entries of one user's stream in one millisecond share a score, which only makes an ack
    /// "up to" such an id cancel a few later entries of that same millisecond.
    public var score: Double {
        Double(self.milliseconds) * 1000 + Double(min(self.sequence, 999))
    }
}
