import DelayQueue
import NIOCore
import NotifyCore
import NotifyTestSupport
import RedisClient
import Testing

@Suite("Delay queue operations", .timeLimit(.minutes(3)))
struct DelayQueueTests {
    @Test("a job is claimed only once due, with attempt 1, and is gone after ack")
    func scheduleClaimAck() async throws {
        try await withQueue { queue, clock, _, _ in
            let outcome = try await queue.schedule(try job("n1"), inMs: 10_000)
            #expect(outcome == .scheduled(dueAtMs: clock.nowMs + 10_000))
            clock.advance(byMs: 9_999)
            #expect(try await claimAll(queue).isEmpty)
            clock.advance(byMs: 1)
            let claimed = try await claimAll(queue)
            #expect(claimed.count == 1)
            let first = try #require(claimed.first)
            #expect(first.id.description == "n1/alice" && first.attempt == 1)
            #expect(String(buffer: first.payload) == "{}")
            #expect(first.dueAtMs == clock.nowMs)
            #expect(try await queue.ack(first) == .acked)
            clock.advance(byMs: 60_000)
            #expect(try await claimAll(queue).isEmpty)
            let stats = try await queue.stats().total
            #expect(stats.counters["scheduled"] == 1 && stats.counters["claimed"] == 1 && stats.counters["acked"] == 1)
            #expect(stats.dueNow == 0 && stats.inFlight == 0)
        }
    }

    @Test("scheduling the same job twice keeps one; after it was sent, scheduling again is a no-op")
    func idempotentSchedule() async throws {
        try await withQueue { queue, clock, _, _ in
            #expect(try await queue.schedule(try job("n1"), inMs: 0) != .duplicate)
            #expect(try await queue.schedule(try job("n1", payload: #"{"other":1}"#), inMs: 5) == .duplicate)
            let claimed = try await claimAll(queue)
            #expect(claimed.count == 1 && String(buffer: claimed[0].payload) == "{}")
            try await queue.ack(claimed[0])
            #expect(try await queue.schedule(try job("n1"), inMs: 0) == .duplicate)
            clock.advance(byMs: 1)
            #expect(try await claimAll(queue).isEmpty)
        }
    }

    @Test("cancel says what happened: cancelled while waiting, marked after claim, already done, unknown")
    func cancelOutcomes() async throws {
        try await withQueue { queue, _, _, _ in
            try await queue.schedule(try job("waiting"), inMs: 1_000)
            #expect(try await queue.cancel(try JobID("waiting/alice")) == .cancelled)

            try await queue.schedule(try job("claimed"), inMs: 0)
            let claimed = try #require(try await claimAll(queue).first)
            #expect(try await queue.mayProceed(claimed))
            #expect(try await queue.cancel(claimed.id) == .markedClaimed)
            #expect(try await queue.mayProceed(claimed) == false)
            // A failed send of a cancelled job is dropped, not retried.
            #expect(try await queue.retry(claimed, error: "503") == .cancelled)

            #expect(try await queue.cancel(try JobID("claimed/alice")) == .alreadyDone)
            #expect(try await queue.cancel(try JobID("never/alice")) == .unknown)
            let stats = try await queue.stats().total
            #expect(stats.counters["cancelled"] == 2 && stats.counters["cancelMarked"] == 1)
        }
    }

    @Test("cancelUpTo cancels the user's jobs at or before an event, and only those")
    func cancelUpTo() async throws {
        try await withQueue { queue, _, _, _ in
            let events = ["100-0", "100-5", "200-0", "300-1"].map { StreamID($0)! }
            for (index, event) in events.enumerated() {
                try await queue.schedule(try job("e\(index)", event: event), inMs: 10_000)
            }
            try await queue.schedule(try job("other", for: "bob", event: StreamID("100-0")), inMs: 10_000)
            let summary = try await queue.cancelUpTo(userID: "alice", eventID: StreamID("200-0")!)
            #expect(summary == CancelSummary(cancelled: 3))
            let remaining = try await queue.peek()
            #expect(Set(remaining.map(\.id)) == ["e3/alice", "other/bob"])
            #expect(try await queue.cancelUpTo(userID: "alice", eventID: StreamID("200-0")!) == CancelSummary())
        }
    }

    @Test("cancelPending cancels the jobs of exactly the given events, in any order")
    func cancelPendingByID() async throws {
        try await withQueue { queue, _, _, _ in
            let events = ["100-0", "100-5", "200-0", "300-1"].map { StreamID($0)! }
            for (index, event) in events.enumerated() {
                try await queue.schedule(try job("e\(index)", event: event), inMs: 10_000)
            }
            try await queue.schedule(try job("other", for: "bob", event: StreamID("100-5")), inMs: 10_000)
            let summary = try await queue.cancelPending(userID: "alice", eventIDs: [events[3], events[1]])
            #expect(summary == CancelSummary(cancelled: 2))
            let remaining = try await queue.peek()
            #expect(Set(remaining.map(\.id)) == ["e0/alice", "e2/alice", "other/bob"])
            #expect(try await queue.cancelPending(userID: "alice", eventIDs: [events[3]]) == CancelSummary())
            #expect(try await queue.cancelPending(userID: "alice", eventIDs: []) == CancelSummary())
        }
    }

    @Test("an expired lease goes to the next claimer with a new token; the old holder's settle is refused")
    func leaseExpiry() async throws {
        try await withQueue(configuration: DelayQueueConfiguration(leaseMs: 5_000)) { queue, clock, _, _ in
            try await queue.schedule(try job("n1"), inMs: 0)
            let first = try #require(try await claimAll(queue).first)
            clock.advance(byMs: 4_999)
            #expect(try await claimAll(queue).isEmpty)
            clock.advance(byMs: 1)
            let second = try #require(try await claimAll(queue).first)
            #expect(second.id == first.id && second.attempt == 2 && second.leaseToken != first.leaseToken)
            #expect(try await queue.ack(first) == .stale)
            #expect(try await queue.mayProceed(first) == false)
            #expect(try await queue.ack(second) == .acked)
            let counters = try await queue.stats().total.counters
            #expect(counters["expiredLeases"] == 1 && counters["staleSettles"] == 1)
        }
    }

    @Test("extendLease keeps a slow job; release gives it back without counting the attempt")
    func extendAndRelease() async throws {
        try await withQueue(configuration: DelayQueueConfiguration(leaseMs: 1_000)) { queue, clock, _, _ in
            try await queue.schedule(try job("slow"), inMs: 0)
            let held = try #require(try await claimAll(queue).first)
            clock.advance(byMs: 900)
            #expect(try await queue.extendLease(held) == .extended)
            clock.advance(byMs: 900)
            #expect(try await claimAll(queue).isEmpty)
            #expect(try await queue.release(held) == .released)
            let again = try #require(try await claimAll(queue).first)
            #expect(again.attempt == 1)
        }
    }

    @Test("retries back off; after the last attempt the job is a dead letter with its error, and replay revives it")
    func retryDeadReplay() async throws {
        let configuration = DelayQueueConfiguration(maxAttempts: 3, retryBaseMs: 1_000, retryMaxMs: 4_000)
        try await withQueue(configuration: configuration) { queue, clock, _, _ in
            try await queue.schedule(try job("flaky"), inMs: 0)
            var attempt = try #require(try await claimAll(queue).first)
            #expect(try await queue.retry(attempt, error: "HTTP 500") == .retried)
            clock.advance(byMs: 499)  // equal jitter: the first retry waits 500...1000 ms
            #expect(try await claimAll(queue).isEmpty)
            clock.advance(byMs: 501)
            attempt = try #require(try await claimAll(queue).first)
            #expect(attempt.attempt == 2)
            #expect(try await queue.retry(attempt, afterMs: 30_000, error: "429 Retry-After 30") == .retried)
            clock.advance(byMs: 29_999)
            #expect(try await claimAll(queue).isEmpty)
            clock.advance(byMs: 1)
            attempt = try #require(try await claimAll(queue).first)
            #expect(attempt.attempt == 3)
            #expect(try await queue.retry(attempt, error: "HTTP 502 from gateway") == .dead)

            let dead = try await queue.deadLetters()
            #expect(dead.map(\.id) == ["flaky/alice"] && dead[0].error == "HTTP 502 from gateway")
            #expect(try await queue.stats().total.dead == 1)
            #expect(try await queue.replay(attempt.id))
            let revived = try #require(try await claimAll(queue).first)
            #expect(revived.attempt == 1)
            #expect(try await queue.deadLetter(revived, error: "payload malformed") == .dead)
            #expect(try await queue.replayAll() == 1)
        }
    }

    @Test("stats report due now, later, overdue lag, in flight, expired leases and dead letters per shard")
    func stats() async throws {
        try await withQueue(configuration: DelayQueueConfiguration(leaseMs: 1_000)) { queue, clock, _, _ in
            try await queue.schedule(try job("a"), inMs: 0)
            try await queue.schedule(try job("b"), inMs: 0)
            try await queue.schedule(try job("c"), inMs: 60_000)
            clock.advance(byMs: 250)
            var total = try await queue.stats().total
            #expect(total.dueNow == 2 && total.scheduledLater == 1 && total.oldestOverdueLagMs == 250)
            let shard = queue.shards.shard(of: "alice")
            let claimed = try await queue.claim(shard: shard, max: 1)
            #expect(claimed.jobs.count == 1 && claimed.nextDueMs != nil && claimed.nextLeaseDeadlineMs != nil)
            clock.advance(byMs: 2_000)
            total = try await queue.stats().total
            #expect(total.inFlight == 1 && total.expiredLeases == 1 && total.dueNow == 1)
            #expect(try await queue.stats(shard: shard) == total)
        }
    }

    @Test("bad input is refused with a clear error and changes nothing")
    func badInput() async throws {
        try await withQueue(configuration: DelayQueueConfiguration(maxPayloadBytes: 1_024)) {
            queue, clock, _, _ async throws in
            await #expect(throws: DelayQueueError.self) { try await queue.schedule(try job("n", payload: ""), inMs: 0) }
            let large = String(repeating: "x", count: 1_025)
            let oversized = await #expect(throws: DelayQueueError.self) {
                try await queue.schedule(try job("n", payload: large), inMs: 0)
            }
            #expect(oversized?.message.contains("1024") == true)
            await #expect(throws: DelayQueueError.self) { try await queue.schedule(try job("n"), inMs: -1) }
            await #expect(throws: DelayQueueError.self) {
                try await queue.schedule(try job("n"), atMs: clock.nowMs + 31 * 24 * 3_600_000)
            }
            await #expect(throws: DelayQueueError.self) { try await queue.schedule(try job("n"), atMs: -5) }
            for (notification, user) in [("", "a"), ("n/x", "a"), ("n", ""), ("n", "a b"), ("n", "{7}"), ("n", "ü")] {
                #expect(throws: DelayQueueError.self) { try JobID(notificationID: notification, userID: user) }
            }
            #expect(throws: DelayQueueError.self) { try JobID("no-slash") }
            await #expect(throws: DelayQueueError.self) { try await queue.claim(shard: 99, max: 1) }
            #expect(try await queue.stats().total.counters["scheduled"] == nil)
        }
    }

    @Test("with AOF (appendfsync always), a Redis crash and restart loses no scheduled job")
    func survivesRestart() async throws {
        try await withQueue(redisArguments: ["--appendonly", "yes", "--appendfsync", "always"]) {
            queue, clock, _, server in
            for index in 0..<500 {
                try await queue.schedule(try job("n\(index)", for: "user\(index % 37)"), inMs: 1_000)
            }
            server.kill()
            try await server.restart()
            clock.advance(byMs: 1_000)
            let claimed = try await claimAll(queue)
            #expect(Set(claimed.map(\.id.description)).count == 500)
        }
    }
}

@Suite("Delay queue batches", .timeLimit(.minutes(3)))
struct DelayQueueBatchTests {
    @Test("batches group by shard but answer in input order, duplicates included")
    func batchOrder() async throws {
        try await withQueue(shards: 4) { queue, clock, _, _ in
            var jobs: [(job: QueueJob, delayMs: Int)] = []
            for index in 0..<600 {
                jobs.append((try job("b\(index)", for: "user\(index % 13)"), index))
            }
            jobs.append((try job("b3", for: "user3"), 5))  // the same job again, in the same batch
            let outcomes = try await queue.schedule(batch: jobs)
            #expect(outcomes.count == 601)
            for index in 0..<600 {
                #expect(outcomes[index] == .scheduled(dueAtMs: clock.nowMs + Int64(index)))
            }
            #expect(outcomes[600] == .duplicate)
            let ids = try (0..<600).map { try JobID(notificationID: "b\($0)", userID: "user\($0 % 13)") }
            let cancelled = try await queue.cancel(batch: ids + [try JobID("b0/user0"), try JobID("zz/user1")])
            #expect(cancelled[0..<600].allSatisfy { $0 == .cancelled })
            #expect(cancelled[600] == .alreadyDone && cancelled[601] == .unknown)
            #expect(try await queue.stats().total.counters["cancelled"] == 600)
        }
    }
}

@Suite("Delay queue wake-ups", .timeLimit(.minutes(3)))
struct WakeUpTests {
    @Test("a schedule announces a new shard head only when it is due before consumers would wake anyway")
    func wakeOnlyWithinHorizon() async throws {
        try await withQueue(configuration: DelayQueueConfiguration(maxSleepMs: 1_000)) { queue, clock, _, server in
            // A first connect's budget for a loaded machine (the 2 s default ran out beside the parallel suite).
            let subscriber = RedisSubscriber(
                configuration: RedisClientConfiguration(url: server.url, acquireTimeoutMs: 10_000),
                logger: testLogger("subscriber"))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await subscriber.run() }
                let wakeUps = try await subscriber.subscribe(to: [queue.keys.wakeChannel])
                let shard = queue.shards.shard(of: "alice")
                try await queue.schedule(try job("far"), inMs: 5_000)  // beyond the horizon: no wake-up
                try await queue.schedule(try job("later-near"), inMs: 900)  // new head within it: wake-up
                try await queue.schedule(try job("not-head"), inMs: 950)  // within, but not the head: none
                try await queue.schedule(try job("now"), inMs: 0)  // new head: wake-up
                var iterator = wakeUps.makeAsyncIterator()
                let first = await iterator.next().map { String(buffer: $0.payload) }
                let second = await iterator.next().map { String(buffer: $0.payload) }
                #expect(first == "\(shard) \(clock.nowMs + 900)")
                #expect(second == "\(shard) \(clock.nowMs)")
                subscriber.shutdown()
                group.cancelAll()
            }
        }
    }
}
