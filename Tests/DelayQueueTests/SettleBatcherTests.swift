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

    /// Polls `condition` (cheap, in-process) until it holds; the suite's time limit bounds it.
    private func waitFor(_ condition: () -> Bool) async throws {
        while !condition() { try await Task.sleep(for: .milliseconds(1)) }
    }
}
