import NotifyCore
import RedisClient
import Testing

@testable import DelayQueue

@Suite("Settle batches", .timeLimit(.minutes(1)))
struct SettleBatcherTests {
    @Test("one entry of a batch that always fails fails alone: the others in the same batch are settled once")
    func oneFailingEntry() async throws {
        try await withQueue(shards: 8) { queue, _, client, _ in
            // Two users of different shards, one job each, both claimed.
            let users = usersInDistinctShards(2, of: queue, prefix: "settle")
            var claimed: [ClaimedJob] = []
            for user in users {
                try await queue.schedule(try job("n-\(user)", for: user), inMs: 0)
                claimed += try await queue.claim(shard: queue.shards.shard(of: user), max: 10).jobs
            }
            try #require(claimed.count == 2)
            // The second user's pending set is not a set any more: its settle fails with WRONGTYPE, every time.
            let broken = claimed[1]
            let pending = queue.keys.pending(shard: broken.shard, userID: broken.id.userID)
            _ = try await client.send("DEL", pending)
            _ = try await client.send("SET", pending, "not a set")

            let batcher = SettleBatcher(queue: queue)
            let first = claimed[0]
            let good = Task { try await batcher.settle(first, .ack) }
            let bad = Task { try await batcher.settle(broken, .ack) }
            // Both wait for the same first batch: the batcher runs only once both are in.
            try await waitFor { batcher.waiting == 2 }
            let run = Task { await batcher.run() }
            let goodOutcome = try await good.value
            #expect(goodOutcome == .acked, "settled in the batch, not again alone: \(goodOutcome)")
            await #expect(throws: RedisClientError.self) { try await bad.value }
            run.cancel()
            await run.value
        }
    }

    @Test("a bad job in the middle of a shard's group: the jobs after it are settled too, each once")
    func badJobWithinOneShard() async throws {
        try await withQueue(shards: 1) { queue, _, client, _ in
            // One shard: all three jobs go into one script call, the bad one in the middle.
            var claimed: [ClaimedJob] = []
            for user in ["first", "broken", "last"] {
                try await queue.schedule(try job("n-\(user)", for: user), inMs: 0)
            }
            claimed = try await queue.claim(shard: 0, max: 10).jobs.sorted {
                ["first", "broken", "last"].firstIndex(of: $0.id.userID)!
                    < ["first", "broken", "last"].firstIndex(of: $1.id.userID)!
            }
            try #require(claimed.map(\.id.userID) == ["first", "broken", "last"])
            let pending = queue.keys.pending(shard: 0, userID: "broken")
            _ = try await client.send("DEL", pending)
            _ = try await client.send("SET", pending, "not a set")

            let results = try await queue.settleEach(batch: claimed.map { ($0, .ack) })
            // The script stopped at the bad job: the first was applied then (and answers stale when settled
            // again alone), the last only when settled alone.
            #expect([SettleOutcome.acked, .stale].contains(try results[0].get()))
            #expect(throws: RedisClientError.self) { try results[1].get() }
            #expect(try results[2].get() == .acked)
        }
    }

    /// Polls `condition` (cheap, in-process) until it holds; the suite's time limit bounds it.
    private func waitFor(_ condition: () -> Bool) async throws {
        while !condition() { try await Task.sleep(for: .milliseconds(1)) }
    }
}
