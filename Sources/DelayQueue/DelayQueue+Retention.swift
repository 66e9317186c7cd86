import RedisClient

/// What one retention pass removed.
public struct TrimSummary: Sendable, Hashable {
    /// Tombstones of finished jobs older than ``DelayQueueConfiguration/doneRetentionMs``.
    public var tombstones: Int
    /// Dead letters older than ``DelayQueueConfiguration/deadRetentionMs`` or beyond
    /// ``DelayQueueConfiguration/maxDeadPerShard``.
    public var deadLetters: Int

    public init(tombstones: Int = 0, deadLetters: Int = 0) {
        self.tombstones = tombstones
        self.deadLetters = deadLetters
    }
}

extension DelayQueue {
    /// Entries one retention script call removes at most.
    static let trimBudget = 500

    /// Applies the retention rules to `shard` until nothing is left to remove: tombstones past the done retention,
    /// dead letters past the dead retention or beyond the per-shard bound (with their users' pending entries).
    /// Safe to run from several processes at once.
    public func trim(shard: Int) async throws -> TrimSummary {
        try self.checkShard(shard)
        let keys = self.keys.shardKeys(shard)
        var summary = TrimSummary()
        while true {
            let reply = try await self.client.eval(
                self.scripts.trim, keys: keys,
                arguments: [
                    .string(self.clock.argument), .integer(self.configuration.doneRetentionMs),
                    .integer(self.configuration.deadRetentionMs), .integer(self.configuration.maxDeadPerShard),
                    .integer(Self.trimBudget),
                ])
            guard let parts = try reply.throwingIfError().array, parts.count >= 2, parts.count % 2 == 0,
                let tombstones = parts[0].int, let more = parts[1].int
            else { throw DelayQueueError(.unexpectedReply, "trim returned \(reply.kindDescription)") }
            summary.tombstones += tombstones
            var dead: [(id: String, pending: RedisArgument, score: String)] = []
            for index in stride(from: 2, to: parts.count, by: 2) {
                guard let text = parts[index].string, let score = parts[index + 1].string else {
                    throw DelayQueueError(.unexpectedReply, "trim returned a malformed dead letter")
                }
                // An id that is no job id (written by something else) has no user: a key of the shard that never
                // exists stands in for its pending set, and it goes all the same.
                let user = JobID(validating: text)?.userID ?? ""
                dead.append((text, self.keys.pending(shard: shard, userID: user), score))
            }
            if !dead.isEmpty {
                summary.deadLetters += try await self.trimDead(dead, shard: shard)
            }
            if more == 0, dead.count < Self.trimBudget { return summary }
        }
    }

    private func trimDead(_ dead: [(id: String, pending: RedisArgument, score: String)], shard: Int) async throws
        -> Int
    {
        var arguments: [RedisArgument] = [
            .string(self.clock.argument), .integer(self.configuration.doneRetentionMs),
        ]
        for (id, _, score) in dead {
            arguments += [.string(id), .string(score)]
        }
        let reply = try await self.client.eval(
            self.scripts.trimDead, keys: self.keys.shardKeys(shard) + dead.map(\.pending), arguments: arguments)
        guard let removed = try reply.throwingIfError().int else {
            throw DelayQueueError(.unexpectedReply, "trim_dead returned \(reply.kindDescription)")
        }
        return removed
    }
}
