/// Which shards a consumer claims from, and how many jobs from each, given its free slots and the shards with
/// jobs due. Each shard costs a script call, so a few shards give a claim's worth each rather than every due
/// shard giving one job (a script call per job would cost Redis more than the jobs); the shards take turns by id,
/// so none waits behind the others.
struct ClaimPlan: Equatable, Sendable {
    var shards: [Int]
    var perShard: Int

    /// Jobs worth one shard's claim call when there are more shards due than free slots spread over them.
    static let minimumPerShard = 16

    /// `nil` when there is nothing to claim (no free slot or no shard due). Never plans more jobs than `free`.
    /// The shards start after `lastShard` (the last one claimed from), wrapping around.
    static func make(free: Int, targets: [Int], claimBatch: Int, after lastShard: Int) -> ClaimPlan? {
        guard free > 0, !targets.isEmpty else { return nil }
        let cap = max(1, min(claimBatch, DelayQueue.maxClaim))
        let sorted = targets.sorted()
        let count = min(sorted.count, max(1, free / min(Self.minimumPerShard, free)))
        let perShard = max(1, min(cap, free / count))
        let start = sorted.firstIndex { $0 > lastShard } ?? 0
        let turn = sorted[start...] + sorted[..<start]
        return ClaimPlan(shards: Array(turn.prefix(count)), perShard: perShard)
    }

    /// Free slots worth a claim once the consumer has been full: claiming each slot as it frees would cost a
    /// claim per job. A quarter of the slots, at most a claim batch.
    static func refill(maxConcurrentJobs: Int, claimBatch: Int) -> Int {
        max(1, min(claimBatch, maxConcurrentJobs / 4))
    }

    /// How long fewer free slots than ``refill(maxConcurrentJobs:claimBatch:)`` wait for more before being
    /// claimed anyway (slow jobs must not stop a consumer from claiming).
    static let refillWait: Duration = .milliseconds(10)
}
