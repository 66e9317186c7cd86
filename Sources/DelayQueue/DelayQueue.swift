import Foundation
import NIOCore
import NotifyCore
import RedisClient

/// The Redis sorted-set delay queue: schedule, cancel, claim with a lease, ack, retry, dead letters, stats.
///
/// Each operation is one Lua script on one shard, so it is atomic and ordered with every other operation on that
/// shard by Redis' single thread: a cancel and a claim of the same job cannot both win. Times come from Redis.
public struct DelayQueue: Sendable {
    public let configuration: DelayQueueConfiguration
    public let shards: ShardMap
    public let keys: QueueKeys
    /// Where the notification records live: a job's record guards it (a retract finds the job through it), so
    /// the queue keeps it alive while the job may still be sent. Same hash tag as the job's shard.
    public let userKeys: UserKeys
    public let client: RedisClient
    let clock: QueueClock
    let scripts = QueueScripts.shared

    public init(
        client: RedisClient, configuration: DelayQueueConfiguration = DelayQueueConfiguration(),
        shards: ShardMap = ShardMap(), clock: QueueClock = .redis, userKeys: UserKeys? = nil
    ) {
        self.client = client
        self.configuration = configuration
        self.shards = shards
        self.keys = QueueKeys(prefix: configuration.keyPrefix, shardCount: shards.count)
        self.clock = clock
        self.userKeys = userKeys ?? UserKeys(shards: shards)
    }

    /// The keys that live as long as a job may be sent: its user's pending set and its notification's record
    /// (they guard it: an ack or retract finds it through them), and the record of the devices it reached (a
    /// retry or replay skips those), removed when the job ends.
    func guardKeys(of id: JobID, shard: Int) -> [RedisArgument] {
        [
            self.keys.pending(shard: shard, userID: id.userID),
            .string(self.userKeys.notificationRecord(id.notificationID, shard: shard)),
            .string(self.userKeys.sentDevices(notificationID: id.notificationID, userID: id.userID)),
        ]
    }

    /// The oldest Redis the scripts run on: `SET … NX GET`, exclusive `XRANGE` bounds and effects replication of
    /// scripts that call `TIME` arrived in 7.0.
    public static let minimumRedisVersion = [7, 0]

    /// Checks the server's version, then loads every script into Redis (calls would load them on demand), so a
    /// Redis that is too old fails at start with a clear error instead of on the first ingest.
    public func prepare() async throws {
        let info = try await self.client.send("INFO", "server").throwingIfError()
        let version = Self.redisVersion(in: info.string ?? "")
        guard let version, version.lexicographicallyPrecedes(Self.minimumRedisVersion) == false else {
            throw DelayQueueError(
                .unsupportedRedis,
                "Redis \(version.map { $0.map(String.init).joined(separator: ".") } ?? "of unknown version") is too "
                    + "old: notify needs Redis 7.0 or later")
        }
        for script in self.scripts.all {
            try await self.client.load(script)
        }
    }

    /// `redis_version` of an `INFO server` answer, as numbers.
    public static func redisVersion(in info: String) -> [Int]? {
        for line in info.split(whereSeparator: \.isNewline) where line.hasPrefix("redis_version:") {
            return line.dropFirst("redis_version:".count).split(separator: ".").compactMap { Int($0) }
        }
        return nil
    }

    // MARK: Producing

    /// Schedules `job` to be due `delayMs` from now (Redis' now). Idempotent per job id.
    @discardableResult
    public func schedule(_ job: QueueJob, inMs delayMs: Int) async throws -> ScheduleOutcome {
        try self.validate(delayMs: delayMs)
        return try await self.schedule(job, mode: "in", value: Int64(delayMs))
    }

    /// Schedules `job` to be due at `dueAtMs` (Unix ms). A time in the past is due at once.
    @discardableResult
    public func schedule(_ job: QueueJob, atMs dueAtMs: Int64) async throws -> ScheduleOutcome {
        guard dueAtMs >= 0 else { throw DelayQueueError(.invalidJob, "due time must not be negative") }
        // A coarse bound (days), so the local clock is good enough here; the due time itself is Redis'.
        guard dueAtMs <= self.approximateNowMs() + Int64(self.configuration.maxDelayMs) else {
            throw DelayQueueError(.invalidJob, "due time is more than \(self.configuration.maxDelayMs) ms ahead")
        }
        return try await self.schedule(job, mode: "at", value: dueAtMs)
    }

    private func schedule(_ job: QueueJob, mode: String, value: Int64) async throws -> ScheduleOutcome {
        try self.validatePayload(job.payload)
        return try await self.scheduleValidated([(job, mode, value)])[0]
    }

    func validate(delayMs: Int) throws(DelayQueueError) {
        guard delayMs >= 0, delayMs <= self.configuration.maxDelayMs else {
            throw DelayQueueError(.invalidJob, "delay must be between 0 and \(self.configuration.maxDelayMs) ms")
        }
    }

    func validatePayload(_ payload: ByteBuffer) throws(DelayQueueError) {
        guard payload.readableBytes > 0 else { throw DelayQueueError(.invalidJob, "payload must not be empty") }
        guard payload.readableBytes <= self.configuration.maxPayloadBytes else {
            throw DelayQueueError(
                .invalidJob,
                "payload of \(payload.readableBytes) bytes exceeds \(self.configuration.maxPayloadBytes) bytes")
        }
    }

    private func approximateNowMs() -> Int64 {
        if case .manual(let clock) = self.clock { return clock.nowMs }
        return Int64(Date().timeIntervalSince1970 * 1000)
    }

    /// `ms * 1000 + min(seq, 999)` written out in decimal, as the scripts write it. Built as text: converting the
    /// double score of an absurd id (a client may send any 19-digit number) to an integer would trap.
    static func scoreText(_ id: StreamID) -> String {
        let sequence = String(min(id.sequence, 999))
        return (id.milliseconds == 0 ? "" : String(id.milliseconds))
            + (id.milliseconds == 0 ? sequence : String(repeating: "0", count: 3 - sequence.count) + sequence)
    }

    // MARK: Cancelling

    /// Cancels one job. A job that was waiting is never sent; one already claimed is marked, and its worker drops
    /// it before the gateway call.
    @discardableResult
    public func cancel(_ id: JobID) async throws -> CancelOutcome {
        try await self.cancel(batch: [id])[0]
    }

    /// Cancels every pending job of `userID` whose event is at or before `eventID` (the app fetched up to there).
    /// Returns once every such job is cancelled or reported in flight or sent, however many there are; each script
    /// call handles at most ``cancelBudget`` of them, so Redis is never held for long.
    public func cancelUpTo(userID: String, eventID: StreamID) async throws -> CancelSummary {
        try await self.cancelPending(userID: userID, ranges: [("-inf", Self.scoreText(eventID))])
    }

    /// Cancels the pending jobs of `userID` for exactly these events (the app fetched them, maybe not in order).
    public func cancelPending(userID: String, eventIDs: [StreamID]) async throws -> CancelSummary {
        guard !eventIDs.isEmpty else {
            return CancelSummary(cancelled: 0, markedClaimed: 0, alreadyDone: 0, unknown: 0)
        }
        let ranges = eventIDs.map { (Self.scoreText($0), Self.scoreText($0)) }
        return try await self.cancelPending(userID: userID, ranges: ranges)
    }

    /// Jobs one cancel script call handles at most.
    static let cancelBudget = 500
    /// Most jobs one claim takes (the script unpacks two values per job; Lua's limit is ~8,000).
    public static let maxClaim = 1_000

    private func cancelPending(userID: String, ranges: [(String, String)]) async throws -> CancelSummary {
        guard JobID.isValidUserID(userID) else { throw DelayQueueError(.invalidJob, "invalid user id") }
        let shard = self.shards.shard(of: userID)
        var arguments: [RedisArgument] = [
            .string(self.clock.argument), .integer(self.configuration.doneRetentionMs), .integer(Self.cancelBudget),
        ]
        for (low, high) in ranges {
            arguments += [.string(low), .string(high)]
        }
        let keys = self.keys.shardKeys(shard) + [self.keys.pending(shard: shard, userID: userID)]
        var summary = CancelSummary(cancelled: 0, markedClaimed: 0, alreadyDone: 0, unknown: 0)
        // Each call removes what it handled from the pending set, so the next starts where it ended. The set is
        // bounded, so the calls needed for what is pending now are bounded too; an `up_to` beyond the newest event
        // (a client's mistake) could be refilled by new events for ever, so the loop stops after that many.
        for _ in 0...(self.configuration.maxPendingPerUser / Self.cancelBudget + 1) {
            let reply = try await self.client.eval(self.scripts.cancelUpTo, keys: keys, arguments: arguments)
            guard let counts = try reply.throwingIfError().array?.compactMap(\.int), counts.count == 5 else {
                throw DelayQueueError(.unexpectedReply, "cancelUpTo returned \(reply.kindDescription)")
            }
            summary.cancelled += counts[0]
            summary.markedClaimed += counts[1]
            summary.alreadyDone += counts[2]
            summary.unknown += counts[3]
            if counts[4] == 0 { return summary }
        }
        return summary
    }

    // MARK: Consuming

    /// Takes back expired leases of `shard`, then leases up to `max` due jobs for ``DelayQueueConfiguration/leaseMs``.
    public func claim(shard: Int, max: Int) async throws -> ClaimBatch {
        try self.checkShard(shard)
        guard (1...Self.maxClaim).contains(max) else {
            throw DelayQueueError(.invalidJob, "a claim takes 1 to \(Self.maxClaim) jobs")
        }
        let reply = try await self.client.eval(
            self.scripts.claim, keys: self.keys.shardKeys(shard),
            arguments: [
                .string(self.clock.argument), .integer(max), .integer(self.configuration.leaseMs),
                .integer(self.configuration.maxAttempts), .integer(self.configuration.doneRetentionMs),
            ])
        return try Self.decodeClaim(reply, shard: shard)
    }

    static func decodeClaim(_ reply: RedisValue, shard: Int) throws -> ClaimBatch {
        guard let parts = reply.array, parts.count >= 3, (parts.count - 3) % 5 == 0,
            let now = parts[0].int, let nextDue = parts[1].int, let nextLease = parts[2].int
        else { throw DelayQueueError(.unexpectedReply, "claim returned \(reply.kindDescription)") }
        var jobs: [ClaimedJob] = []
        jobs.reserveCapacity((parts.count - 3) / 5)
        var index = 3
        while index < parts.count {
            defer { index += 5 }
            // A job whose stored id or fields cannot be read (written by something else) is skipped rather than
            // failing its whole batch: its lease expires and, after its last attempt, claim.lua buries it.
            guard let idText = parts[index].string, let id = JobID(validating: idText),
                let payload = parts[index + 1].bytes, let attempt = parts[index + 2].int,
                let token = parts[index + 3].string, let due = parts[index + 4].double
            else { continue }
            jobs.append(
                ClaimedJob(
                    id: id, shard: shard, payload: payload, attempt: attempt, leaseToken: token,
                    dueAtMs: Int64(due), claimedAtMs: Int64(now)))
        }
        return ClaimBatch(
            shard: shard, jobs: jobs, nowMs: Int64(now), nextDueMs: nextDue < 0 ? nil : Int64(nextDue),
            nextLeaseDeadlineMs: nextLease < 0 ? nil : Int64(nextLease))
    }

    /// The job was delivered: it is gone (with a tombstone for late cancels).
    @discardableResult
    public func ack(_ job: ClaimedJob) async throws -> SettleOutcome {
        try await self.settle(batch: [(job, .ack)])[0]
    }

    /// The send failed: try again after `delayMs` (the policy's backoff, or the gateway's Retry-After), or make it a
    /// dead letter when it was the last attempt.
    @discardableResult
    public func retry(_ job: ClaimedJob, afterMs delayMs: Int? = nil, error: String) async throws -> SettleOutcome {
        let delay = delayMs ?? self.configuration.retryDelayMs(attempt: job.attempt)
        return try await self.settle(batch: [(job, .retry(afterMs: delay, error: error))])[0]
    }

    /// The job can never succeed (e.g. a malformed payload): straight to the dead letters.
    @discardableResult
    public func deadLetter(_ job: ClaimedJob, error: String) async throws -> SettleOutcome {
        try await self.settle(batch: [(job, .deadLetter(error: error))])[0]
    }

    /// Gives an unstarted job back (graceful stop): due at once, and the attempt does not count.
    @discardableResult
    public func release(_ job: ClaimedJob) async throws -> SettleOutcome {
        try await self.settle(batch: [(job, .release)])[0]
    }

    /// Extends the lease of a slow send by ``DelayQueueConfiguration/leaseMs`` from now.
    @discardableResult
    public func extendLease(_ job: ClaimedJob) async throws -> SettleOutcome {
        try await self.settle(batch: [(job, .extendLease)])[0]
    }

    /// Whether the job may still be sent: not cancelled, and this claim still holds the lease. Workers ask right
    /// before the gateway call.
    public func mayProceed(_ job: ClaimedJob) async throws -> Bool {
        let replies = try await self.client.send(batch: self.mayProceedCommands(job))
        return try Self.mayProceed(job, replies[0], replies[1])
    }

    /// The two commands that tell whether `job` may proceed: its cancel mark and its lease token.
    func mayProceedCommands(_ job: ClaimedJob) -> [RedisCommand] {
        let keys = self.keys.shardKeys(job.shard)
        return [
            RedisCommand("SISMEMBER", keys[QueueKeys.cancelledIndex], .string(job.id.description)),
            RedisCommand("HGET", keys[1], .string("\(job.id)|t")),
        ]
    }

    /// Not cancelled, and the lease is still the claim's. An error reply (`-BUSY`, `-LOADING`) throws: it
    /// cannot tell, and reading it as "cancelled" would finish an accepted job without sending it.
    static func mayProceed(_ job: ClaimedJob, _ cancelMark: RedisValue, _ token: RedisValue) throws -> Bool {
        try cancelMark.throwingIfError() == .integer(0) && token.throwingIfError().string == job.leaseToken
    }

    // MARK: Dead letters

    /// Moves one dead letter back to due now with fresh attempts; `false` if it is not a dead letter.
    @discardableResult
    public func replay(_ id: JobID) async throws -> Bool {
        try await self.replay(ids: [id], shard: self.shards.shard(of: id.userID)) == 1
    }

    /// Replays up to `limit` dead letters of every shard; returns how many.
    @discardableResult
    public func replayAll(limitPerShard limit: Int = 1_000) async throws -> Int {
        var total = 0
        for shard in self.shards.all {
            let keys = self.keys.shardKeys(shard)
            let reply = try await self.client.send("ZRANGE", keys[QueueKeys.deadIndex], 0, .integer(limit - 1))
            // An id that is not a job id (written by something else) cannot be replayed; the retention trim
            // removes it in time.
            let ids = (try reply.throwingIfError().array ?? []).compactMap {
                $0.string.flatMap(JobID.init(validating:))
            }
            if !ids.isEmpty { total += try await self.replay(ids: ids, shard: shard) }
        }
        return total
    }

    /// One script call per shard: the ids were read before, so the script skips those that stopped being dead
    /// letters meanwhile. Each replayed job's pending set is kept alive for another retry window.
    private func replay(ids: [JobID], shard: Int) async throws -> Int {
        let reply = try await self.client.eval(
            self.scripts.replay,
            keys: self.keys.shardKeys(shard) + ids.flatMap { self.guardKeys(of: $0, shard: shard) },
            arguments: [.string(self.clock.argument), .integer(self.configuration.jobGuardMs)]
                + ids.map { .string($0.description) })
        guard let count = try reply.throwingIfError().int else {
            throw DelayQueueError(.unexpectedReply, "replay returned \(reply.kindDescription)")
        }
        return count
    }

    func checkShard(_ shard: Int) throws(DelayQueueError) {
        guard self.shards.all.contains(shard) else {
            throw DelayQueueError(.invalidJob, "shard \(shard) is outside 0..<\(self.shards.count)")
        }
    }
}
