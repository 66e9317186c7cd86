import Testing

@testable import DelayQueue

@Suite("Claim plan", .timeLimit(.minutes(1)))
struct ClaimPlanTests {
    @Test("plenty of free slots: every due shard, an even share each, up to a claim batch")
    func plenty() throws {
        let plan = try #require(ClaimPlan.make(free: 256, targets: [3, 9], claimBatch: 64, after: -1))
        #expect(plan == ClaimPlan(shards: [3, 9], perShard: 64))
        let spread = try #require(ClaimPlan.make(free: 256, targets: Array(0..<8), claimBatch: 64, after: -1))
        #expect(spread == ClaimPlan(shards: Array(0..<8), perShard: 32))
    }

    @Test("few free slots over many due shards: a claim's worth from a few, all but a few slots, never more")
    func few() throws {
        let plan = try #require(ClaimPlan.make(free: 70, targets: Array(0..<64), claimBatch: 64, after: -1))
        #expect(plan.perShard >= ClaimPlan.minimumPerShard)
        #expect(plan.shards == [0, 1, 2, 3])
        for free in 1...300 {
            for targets in [1, 2, 3, 7, 64] {
                for claimBatch in [1, 8, 64, 5_000] {
                    let plan = try #require(
                        ClaimPlan.make(free: free, targets: Array(0..<targets), claimBatch: claimBatch, after: free))
                    let planned = plan.perShard * plan.shards.count
                    #expect(planned <= free)
                    #expect(plan.perShard >= 1 && plan.perShard <= min(claimBatch, DelayQueue.maxClaim))
                    #expect(Set(plan.shards).count == plan.shards.count)
                    // Unless the claim batch or the due shards are what limits it, nearly every free slot is used.
                    if claimBatch >= 64, plan.perShard < claimBatch, plan.shards.count < targets {
                        #expect(free - planned < plan.shards.count, "free \(free), planned \(planned)")
                    }
                }
            }
        }
    }

    @Test("shards take turns by id, however the set of due shards changes")
    func turns() throws {
        var last = -1
        var seen: [Int] = []
        for _ in 0..<4 {
            let plan = try #require(ClaimPlan.make(free: 32, targets: [10, 20, 30, 40], claimBatch: 64, after: last))
            last = plan.shards.last!
            seen += plan.shards
        }
        #expect(seen == [10, 20, 30, 40, 10, 20, 30, 40])
        // 0 and 1 were claimed from and drained: 2 comes next, not 4.
        let next = try #require(ClaimPlan.make(free: 32, targets: [2, 3, 4, 5, 6, 7], claimBatch: 64, after: 1))
        #expect(next.shards == [2, 3])
        let wrapped = try #require(ClaimPlan.make(free: 16, targets: [2, 5, 9], claimBatch: 64, after: 9))
        #expect(wrapped.shards == [2])
    }

    @Test("nothing free or nothing due: no claim")
    func nothing() {
        #expect(ClaimPlan.make(free: 0, targets: [1], claimBatch: 64, after: -1) == nil)
        #expect(ClaimPlan.make(free: 10, targets: [], claimBatch: 64, after: -1) == nil)
    }

    @Test("the refill threshold: a quarter of the slots, at most a claim batch, at least one")
    func refill() {
        #expect(ClaimPlan.refill(maxConcurrentJobs: 256, claimBatch: 64) == 64)
        #expect(ClaimPlan.refill(maxConcurrentJobs: 256, claimBatch: 16) == 16)
        #expect(ClaimPlan.refill(maxConcurrentJobs: 2, claimBatch: 64) == 1)
    }
}
