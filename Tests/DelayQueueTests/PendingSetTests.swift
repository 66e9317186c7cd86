import DelayQueue
import NIOCore
import NotifyCore
import NotifyTestSupport
import RedisClient
import Testing

/// The user's pending set is what an ack searches: it must hold every job that may still be sent (and nothing
/// else for long), at any size, for as long as the job may be sent.
@Suite("Delay queue pending sets", .timeLimit(.minutes(2)))
struct PendingSetTests {
    func pending(_ queue: DelayQueue, _ user: String = "alice") -> RedisArgument {
        queue.pendingKey(shard: queue.shards.shard(of: user), userID: user)
    }

    func members(_ queue: DelayQueue, _ client: RedisClient, _ user: String = "alice") async throws -> Set<String> {
        Set(try await client.send("ZRANGE", self.pending(queue, user), 0, -1).array?.compactMap(\.string) ?? [])
    }

    @Test("an ack up to the newest of 20,000 pending jobs cancels every one of them, in bounded script calls")
    func ackUpToAtScale() async throws {
        let count = 20_000
        try await withQueue(configuration: DelayQueueConfiguration(maxPendingPerUser: 25_000)) {
            queue, _, client, _ in
            let jobs = try (1...count).map { index in
                (
                    job: try job("n\(index)", event: StreamID(milliseconds: UInt64(1_000 + index), sequence: 0)),
                    delayMs: 60_000
                )
            }
            let outcomes = try await queue.schedule(batch: jobs)
            #expect(outcomes.allSatisfy { if case .scheduled = $0 { true } else { false } })
            #expect(try await client.send("ZCARD", self.pending(queue)).int == count)

            let summary = try await queue.cancelUpTo(
                userID: "alice", eventID: StreamID(milliseconds: UInt64(1_000 + count), sequence: 0))
            #expect(summary == CancelSummary(cancelled: count))
            #expect(try await queue.stats().total.scheduledLater == 0)
            #expect(try await client.send("EXISTS", self.pending(queue)).int == 0)
        }
    }

    @Test("a job leaves its user's pending set when it is sent, dropped or cancelled; a dead letter stays in it")
    func finishedJobsLeave() async throws {
        try await withQueue { queue, _, client, _ in
            for (index, name) in ["sent", "dropped", "dead", "retried", "byID"].enumerated() {
                let event = StreamID(milliseconds: UInt64(100 + index), sequence: 0)
                try await queue.schedule(try job(name, event: event), inMs: name == "byID" ? 5_000 : 0)
            }
            let claimed = Dictionary(uniqueKeysWithValues: try await claimAll(queue).map { ($0.id.notificationID, $0) })
            #expect(claimed.count == 4)
            #expect(try await queue.ack(try #require(claimed["sent"])) == .acked)
            #expect(try await queue.cancel(try JobID("dropped/alice")) == .markedClaimed)
            #expect(try await queue.settle(batch: [(try #require(claimed["dropped"]), .drop)]) == [.cancelled])
            #expect(try await queue.deadLetter(try #require(claimed["dead"]), error: "400 BadDeviceToken") == .dead)
            #expect(try await queue.retry(try #require(claimed["retried"]), afterMs: 1_000, error: "503") == .retried)
            #expect(try await queue.cancel(try JobID("byID/alice")) == .cancelled)
            #expect(
                try await self.members(queue, client)
                    == ["dead/alice", "retried/alice"])

            // An ack still reaches the dead letter, so a later replay cannot push what the user has seen.
            let summary = try await queue.cancelUpTo(userID: "alice", eventID: StreamID(milliseconds: 200, sequence: 0))
            #expect(summary == CancelSummary(cancelled: 2))
            #expect(try await queue.replay(try JobID("dead/alice")) == false)
            #expect(try await self.members(queue, client).isEmpty)
            let counters = try await queue.stats().total.counters
            #expect(counters["acked"] == 1 && counters["cancelled"] == 4)
        }
    }

    @Test("a user's pending set is bounded: beyond the limit a push is not scheduled and says so")
    func boundedPendingSet() async throws {
        try await withQueue(configuration: DelayQueueConfiguration(maxPendingPerUser: 2)) { queue, _, client, _ in
            for index in 1...2 {
                let event = StreamID(milliseconds: UInt64(index), sequence: 0)
                #expect(try await queue.schedule(try job("n\(index)", event: event), inMs: 1_000) != .limited)
            }
            let third = try job("n3", event: StreamID(milliseconds: 3, sequence: 0))
            #expect(try await queue.schedule(third, inMs: 1_000) == .limited)
            // A job already known is still a duplicate, not "limited".
            #expect(try await queue.schedule(try job("n1", event: StreamID("1-0")), inMs: 1_000) == .duplicate)
            #expect(try await self.members(queue, client) == ["n1/alice", "n2/alice"])
            _ = try await queue.cancelUpTo(userID: "alice", eventID: StreamID("1-0")!)
            #expect(try await queue.schedule(third, inMs: 1_000) != .limited)
            #expect(try await queue.stats().total.counters["limited"] == 1)
        }
    }

    @Test("a pending set outlives its latest job's due time by the retry window and the dead-letter retention")
    func pendingSetOutlivesItsJobs() async throws {
        let day = 86_400_000
        let configuration = DelayQueueConfiguration()
        try await withQueue(configuration: configuration) { queue, _, client, _ in
            try await queue.schedule(try job("late", event: StreamID("1-0")), inMs: 20 * day)
            try await queue.schedule(try job("soon", event: StreamID("2-0")), inMs: 1_000)
            let ttl = try #require(try await client.send("PTTL", self.pending(queue)).int)
            // A nearer job must not shorten what the later one needs.
            #expect(ttl > 20 * day + configuration.jobGuardMs - 60_000)
            #expect(configuration.jobGuardMs >= configuration.deadRetentionMs + configuration.retryWindowMs)
        }
    }
}

@Suite("Delay queue retention", .timeLimit(.minutes(2)))
struct RetentionTests {
    @Test("a long Retry-After is honoured, and keeps the job's guards alive past the wait")
    func retryKeepsGuards() async throws {
        let configuration = DelayQueueConfiguration()
        let tenDays = 10 * 86_400_000
        try await withQueue(configuration: configuration) { queue, clock, client, _ in
            try await queue.schedule(try job("slow-gateway", event: StreamID("1-0")), inMs: 0)
            let claimed = try #require(try await claimAll(queue).first)
            #expect(try await queue.retry(claimed, afterMs: tenDays, error: "429") == .retried)
            #expect(try await queue.peek(limit: 1).first?.atMs == clock.nowMs + Int64(tenDays))
            let pending = queue.pendingKey(shard: queue.shards.shard(of: "alice"), userID: "alice")
            let ttl = try #require(try await client.send("PTTL", pending).int)
            // Scheduled due now, the set was kept for the guard alone; the retry lengthened it by the wait.
            #expect(ttl > configuration.jobGuardMs + tenDays - 60_000)
        }
    }

    @Test("a dead letter whose id is no job id is trimmed too, and does not hold up the rest")
    func trimForeignDeadLetter() async throws {
        let configuration = DelayQueueConfiguration(deadRetentionMs: 1_000)
        try await withQueue(configuration: configuration, shards: 1) { queue, clock, client, _ in
            let keys = queue.shardKeys(0)
            _ = try await client.send("ZADD", keys[QueueKeysIndex.dead], .integer(Int(clock.nowMs)), "not a job id")
            _ = try await client.send("HSET", keys[1], "not a job id", "{}")
            try await queue.schedule(try job("real"), inMs: 0)
            try await queue.deadLetter(try #require(try await claimAll(queue).first), error: "400")
            clock.advance(byMs: 1_001)
            #expect(try await queue.trim(shard: 0) == TrimSummary(tombstones: 0, deadLetters: 2))
            #expect(try await queue.deadLetters().isEmpty)
        }
    }

    @Test("tombstones are trimmed without any consumer; dead letters expire by age with their pending entries")
    func trimWithoutConsumers() async throws {
        let configuration = DelayQueueConfiguration(doneRetentionMs: 60_000, deadRetentionMs: 3_600_000)
        try await withQueue(configuration: configuration) { queue, clock, client, _ in
            try await queue.schedule(try job("sent", event: StreamID("1-0")), inMs: 0)
            try await queue.schedule(try job("dead", event: StreamID("2-0")), inMs: 0)
            try await queue.schedule(try job("waiting", event: StreamID("3-0")), inMs: 10 * 3_600_000)
            let claimed = Dictionary(uniqueKeysWithValues: try await claimAll(queue).map { ($0.id.notificationID, $0) })
            try await queue.ack(try #require(claimed["sent"]))
            try await queue.deadLetter(try #require(claimed["dead"]), error: "400")
            let shard = queue.shards.shard(of: "alice")
            let jobKey = queue.shardKeys(shard)[1]
            #expect(try await client.send("HEXISTS", jobKey, "sent/alice").int == 1)

            clock.advance(byMs: 60_001)
            #expect(try await queue.trim(shard: shard) == TrimSummary(tombstones: 1, deadLetters: 0))
            #expect(try await client.send("HEXISTS", jobKey, "sent/alice").int == 0)

            clock.advance(byMs: 3_600_000)
            #expect(try await queue.trim(shard: shard) == TrimSummary(tombstones: 0, deadLetters: 1))
            #expect(try await queue.deadLetters().isEmpty)
            let pending = queue.pendingKey(shard: shard, userID: "alice")
            #expect(try await client.send("ZRANGE", pending, 0, -1).array?.compactMap(\.string) == ["waiting/alice"])
            #expect(try await queue.stats().total.counters["deadExpired"] == 1)
        }
    }

    @Test("dead letters beyond the per-shard bound go oldest first; a replayed one is not removed")
    func deadLetterBound() async throws {
        let configuration = DelayQueueConfiguration(maxDeadPerShard: 3)
        try await withQueue(configuration: configuration, shards: 1) { queue, clock, _, _ in
            for index in 1...5 {
                try await queue.schedule(try job("n\(index)"), inMs: 0)
                let claimed = try #require(try await claimAll(queue).first)
                try await queue.deadLetter(claimed, error: "400")
                clock.advance(byMs: 1)
            }
            #expect(try await queue.trim(shard: 0) == TrimSummary(tombstones: 0, deadLetters: 2))
            #expect(try await queue.deadLetters().map(\.id) == ["n3/alice", "n4/alice", "n5/alice"])
        }
    }
}

@Suite("Delay queue requirements", .timeLimit(.minutes(1)))
struct RequirementTests {
    @Test("the Redis version is read from INFO server; older than 7.0 is refused at prepare")
    func redisVersion() async throws {
        #expect(
            DelayQueue.redisVersion(in: "# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\n") == [7, 0, 15])
        #expect(DelayQueue.redisVersion(in: "redis_version:6.2.14\r\n")?.lexicographicallyPrecedes([7, 0]) == true)
        #expect(DelayQueue.redisVersion(in: "no version here") == nil)
        // The real server of the tests passes.
        try await withQueue { queue, _, _, _ in try await queue.prepare() }
    }
}

/// Positions of the shard keys (see `Scripts/common.lua`).
enum QueueKeysIndex {
    static let dead = 4
}

@Suite("Delay queue pending scores", .timeLimit(.minutes(1)))
struct PendingScoreTests {
    @Test("pending scores are ms * 1000 + min(seq, 999), as text, for any id")
    func scores() {
        #expect(DelayQueue.pendingScore(StreamID("1700000000000-5")!) == "1700000000000005")
        #expect(DelayQueue.pendingScore(StreamID("1700000000000-4321")!) == "1700000000000999")
        #expect(DelayQueue.pendingScore(StreamID("0-7")!) == "7")
        #expect(DelayQueue.pendingScore(StreamID("18446744073709551615-0")!) == "18446744073709551615000")
    }
}
