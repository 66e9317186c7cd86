import NIOCore
import NotifyCore
import RedisClient

/// The state of one shard (or the sum of all): what waits, what runs, what died, and counters since the start.
public struct QueueStats: Sendable, Hashable, Codable {
    /// Jobs due now or overdue, not yet claimed.
    public var dueNow = 0
    /// Jobs due later.
    public var scheduledLater = 0
    /// How late the oldest overdue job is (ms); 0 when nothing is overdue.
    public var oldestOverdueLagMs: Int64 = 0
    /// Jobs claimed by a worker, not yet settled.
    public var inFlight = 0
    /// Claimed jobs whose lease ran out (the next claim takes them back).
    public var expiredLeases = 0
    /// Dead letters waiting for ops.
    public var dead = 0
    /// Cumulative counters: scheduled, duplicates, cancelled, cancelMarked, claimed, acked, retried, released,
    /// dead, replayed, expiredLeases, staleSettles.
    public var counters: [String: Int] = [:]

    public init() {}

    /// Adds another shard's numbers (the lag is the worst of the two).
    public mutating func add(_ other: QueueStats) {
        self.dueNow += other.dueNow
        self.scheduledLater += other.scheduledLater
        self.oldestOverdueLagMs = max(self.oldestOverdueLagMs, other.oldestOverdueLagMs)
        self.inFlight += other.inFlight
        self.expiredLeases += other.expiredLeases
        self.dead += other.dead
        self.counters.merge(other.counters, uniquingKeysWith: +)
    }

    init(reply: RedisValue) throws {
        guard let parts = reply.array, parts.count == 8, let now = parts[0].int, let dueNow = parts[1].int,
            let later = parts[2].int, let oldest = parts[3].int, let inFlight = parts[4].int,
            let expired = parts[5].int, let dead = parts[6].int, let fields = parts[7].array
        else { throw DelayQueueError(.unexpectedReply, "stats returned \(reply.kindDescription)") }
        self.dueNow = dueNow
        self.scheduledLater = later
        self.oldestOverdueLagMs = oldest >= 0 && oldest <= now ? Int64(now - oldest) : 0
        self.inFlight = inFlight
        self.expiredLeases = expired
        self.dead = dead
        var index = 0
        while index + 1 < fields.count {
            if let name = fields[index].string, name != "leaseSeq", let value = fields[index + 1].int {
                self.counters[name] = value
            }
            index += 2
        }
    }
}

/// A job as ops see it: waiting (peek) or dead (dead letters).
public struct QueueEntry: Sendable, Hashable, Codable {
    public var id: String
    public var shard: Int
    /// Due time for a waiting job; time of death for a dead letter (ms).
    public var atMs: Int64
    public var payloadBytes: Int
    /// Last error, for dead letters.
    public var error: String?
}

extension DelayQueue {
    /// Stats of one shard.
    public func stats(shard: Int) async throws -> QueueStats {
        try self.checkShard(shard)
        let reply = try await self.client.eval(
            self.scripts.stats, keys: self.keys.shardKeys(shard), arguments: [.string(self.clock.argument)])
        return try QueueStats(reply: reply)
    }

    /// Stats of every shard, pipelined in one batch, and their total.
    public func stats() async throws -> (total: QueueStats, shards: [QueueStats]) {
        let calls = self.shards.all.map {
            RedisScriptCall(keys: self.keys.shardKeys($0), arguments: [.string(self.clock.argument)])
        }
        let replies = try await self.client.eval(self.scripts.stats, batch: calls)
        var total = QueueStats()
        var perShard: [QueueStats] = []
        for reply in replies {
            let stats = try QueueStats(reply: try reply.throwingIfError())
            total.add(stats)
            perShard.append(stats)
        }
        return (total, perShard)
    }

    /// The next waiting jobs of `shard` (all shards when `nil`), earliest first.
    public func peek(shard: Int? = nil, limit: Int = 20) async throws -> [QueueEntry] {
        try await self.entries(set: 0, shard: shard, limit: limit, withError: false)
    }

    /// Dead letters, oldest first, with their last error.
    public func deadLetters(shard: Int? = nil, limit: Int = 20) async throws -> [QueueEntry] {
        try await self.entries(set: QueueKeys.deadIndex, shard: shard, limit: limit, withError: true)
    }

    private func entries(set keyIndex: Int, shard: Int?, limit: Int, withError: Bool) async throws -> [QueueEntry] {
        if let shard { try self.checkShard(shard) }
        var found: [QueueEntry] = []
        for shard in shard.map({ [$0] }) ?? Array(self.shards.all) {
            let keys = self.keys.shardKeys(shard)
            let members = try await self.client.send("ZRANGE", keys[keyIndex], 0, .integer(limit - 1), "WITHSCORES")
            guard let flat = members.array, !flat.isEmpty else { continue }
            var ids: [String] = []
            var scores: [Int64] = []
            for index in stride(from: 0, to: flat.count - 1, by: 2) {
                ids.append(flat[index].string ?? "")
                scores.append(Int64(flat[index + 1].double ?? 0))
            }
            let details = try await self.client.send(batch: [
                RedisCommand("HMGET", [keys[1]] + ids.map { .string($0) }),
                RedisCommand("HMGET", [keys[1]] + ids.map { .string("\($0)|e") }),
            ])
            let payloads = details[0].array ?? []
            let errors = details[1].array ?? []
            for (index, id) in ids.enumerated() {
                found.append(
                    QueueEntry(
                        id: id, shard: shard, atMs: scores[index],
                        payloadBytes: payloads[safe: index]?.bytes?.readableBytes ?? 0,
                        error: withError ? errors[safe: index]?.string : nil))
            }
        }
        return Array(found.sorted { $0.atMs < $1.atMs }.prefix(limit))
    }
}

extension Array {
    fileprivate subscript(safe index: Int) -> Element? {
        self.indices.contains(index) ? self[index] : nil
    }
}

/// The stats of every shard and their total, as JSON for ops (`notify queue stats --json`, the admin API).
public struct QueueStatsDocument: Encodable, Sendable {
    public struct Shard: Encodable, Sendable {
        public var shard: Int
        public var stats: QueueStats
    }

    public var total: QueueStats
    public var shards: [Shard]

    public init(total: QueueStats, shards: [QueueStats]) {
        self.total = total
        self.shards = shards.enumerated().map { Shard(shard: $0.offset, stats: $0.element) }
    }
}
