import RedisClient

/// Reads users' inboxes (Redis streams written by the ingest script).
public struct Inbox: Sendable {
    public enum Order: String, Sendable {
        case newestFirst = "newest"
        case oldestFirst = "oldest"
    }

    public let client: RedisClient
    public let keys: UserKeys

    public init(client: RedisClient, keys: UserKeys) {
        self.client = client
        self.keys = keys
    }

    /// Events of `userID` strictly after `after` (all from the start when `nil`), oldest first, at most `limit`.
    public func events(of userID: String, after: StreamID?, limit: Int) async throws -> [InboxEvent] {
        try await self.page(of: userID, after: after, before: nil, limit: limit, order: .oldestFirst)
    }

    /// A page of `userID`'s events strictly between `after` and `before` (open ends when `nil`).
    ///
    /// Newest first starts at `before` and walks back; oldest first starts at `after` and walks forward, so the
    /// last id of a page is the cursor of the next.
    public func page(
        of userID: String, after: StreamID?, before: StreamID?, limit: Int, order: Order
    ) async throws -> [InboxEvent] {
        // Redis refuses exclusive bounds that cannot move (after the largest id, before 0-0) and empty intervals.
        if let before, before == StreamID(milliseconds: 0, sequence: 0) { return [] }
        if let after, after.milliseconds == .max, after.sequence == .max { return [] }
        if let after, let before, after >= before { return [] }
        let low = after.map { "(\($0)" } ?? "-"
        let high = before.map { "(\($0)" } ?? "+"
        let key = RedisArgument.string(self.keys.inbox(userID))
        let reply =
            switch order {
            case .oldestFirst:
                try await self.client.send("XRANGE", key, .string(low), .string(high), "COUNT", .integer(limit))
            case .newestFirst:
                try await self.client.send("XREVRANGE", key, .string(high), .string(low), "COUNT", .integer(limit))
            }
        return try Self.parse(reply)
    }

    /// The id of the newest event of `userID`, if any.
    public func lastEventID(of userID: String) async throws -> StreamID? {
        try await self.page(of: userID, after: nil, before: nil, limit: 1, order: .newestFirst).first?.id
    }

    /// Whether events after `after` were removed from `userID`'s inbox (trimmed by its length limit) before a
    /// reader could see them; if so, the oldest id still kept (`nil` when none is). Trimming removes the oldest
    /// entries, so events were lost when some were removed (`entries-added` > `length`) and `after` is older than
    /// the first one kept. (The one case this reports wrongly: a reader that saw exactly up to the last entry
    /// removed; it then re-reads history it had.) An inbox that expired as a whole cannot tell, and reports nothing.
    public func lostEvents(of userID: String, after: StreamID) async throws -> (lost: Bool, oldestKept: StreamID?) {
        // Raw reply: "no such key" is an error reply, and an inbox that does not exist lost nothing we can tell.
        let reply = try await self.client.send(
            batch: [RedisCommand("XINFO", "STREAM", .string(self.keys.inbox(userID)))])[0]
        if reply.errorMessage != nil { return (false, nil) }
        guard let fields = reply.array else {
            throw RedisClientError(.protocolError, "XINFO STREAM returned \(reply.kindDescription)")
        }
        var length = 0
        var added = 0
        var oldest: StreamID?
        var index = 0
        while index + 1 < fields.count {
            switch fields[index].string {
            case "length": length = fields[index + 1].int ?? 0
            case "entries-added": added = fields[index + 1].int ?? 0
            case "first-entry": oldest = fields[index + 1].array?.first?.string.flatMap(StreamID.init)
            default: break
            }
            index += 2
        }
        guard added > length, let oldest, after < oldest else { return (false, oldest) }
        return (true, oldest)
    }

    static func parse(_ reply: RedisValue) throws -> [InboxEvent] {
        guard let entries = reply.array else {
            throw RedisClientError(.protocolError, "XRANGE returned \(reply.kindDescription)")
        }
        return entries.compactMap { entry in
            guard let parts = entry.array, parts.count == 2, let id = parts[0].string.flatMap(StreamID.init),
                let fields = parts[1].array
            else { return nil }
            var index = 0
            while index + 1 < fields.count {
                if fields[index].string == InboxEvent.field, let members = fields[index + 1].string {
                    return InboxEvent(id: id, members: members)
                }
                index += 2
            }
            return nil
        }
    }
}
