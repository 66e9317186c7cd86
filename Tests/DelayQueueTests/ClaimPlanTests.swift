import Testing

@testable import DelayQueue

@Suite("Claim plan", .timeLimit(.minutes(1)))
struct ClaimPlanTests {
    @Test("plenty of free slots: every due shard, an even share each, up to a claim batch")
    func plenty() throws {
        let plan = try #require(ClaimPlan.make(free: 256, targets: [3, 9], claimBatch: 64, rotation: 0))
        #expect(plan == ClaimPlan(shards: [3, 9], perShard: 64))
        let spread = try #require(ClaimPlan.make(free: 256, targets: Array(0..<8), claimBatch: 64, rotation: 0))
        #expect(spread == ClaimPlan(shards: Array(0..<8), perShard: 32))
    }

    @Test("few free slots over many due shards: a claim's worth from a few, never more than is free")
    func few() throws {
        let plan = try #require(ClaimPlan.make(free: 70, targets: Array(0..<64), claimBatch: 64, rotation: 0))
        #expect(plan.perShard == ClaimPlan.minimumPerShard)
        #expect(plan.shards == [0, 1, 2, 3])
        for free in 1...300 {
            for targets in [1, 2, 7, 64] {
                let plan = try #require(
                    ClaimPlan.make(free: free, targets: Array(0..<targets), claimBatch: 64, rotation: free))
                #expect(plan.perShard * plan.shards.count <= free)
                #expect(plan.perShard >= 1 && plan.perShard <= 64)
                #expect(Set(plan.shards).count == plan.shards.count)
            }
        }
    }

    @Test("the rotation moves on, so every due shard is claimed from in turn")
    func rotation() throws {
        var rotation = 0
        var seen: [Int] = []
        for _ in 0..<4 {
            let plan = try #require(
                ClaimPlan.make(free: 32, targets: [10, 20, 30, 40], claimBatch: 64, rotation: rotation))
            rotation += plan.shards.count
            seen += plan.shards
        }
        #expect(seen == [10, 20, 30, 40, 10, 20, 30, 40])
    }

    @Test("nothing free or nothing due: no claim")
    func nothing() {
        #expect(ClaimPlan.make(free: 0, targets: [1], claimBatch: 64, rotation: 0) == nil)
        #expect(ClaimPlan.make(free: 10, targets: [], claimBatch: 64, rotation: 0) == nil)
    }

    @Test("the refill threshold: a quarter of the slots, at most a claim batch, at least one")
    func refill() {
        #expect(ClaimPlan.refill(maxConcurrentJobs: 256, claimBatch: 64) == 64)
        #expect(ClaimPlan.refill(maxConcurrentJobs: 256, claimBatch: 16) == 16)
        #expect(ClaimPlan.refill(maxConcurrentJobs: 2, claimBatch: 64) == 1)
    }
}
