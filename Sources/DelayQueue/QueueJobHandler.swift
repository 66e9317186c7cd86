import RedisClient

/// What a handler decided about a job.
public enum JobResult: Sendable, Hashable {
    /// Delivered: the job is finished.
    case done
    /// Not sent because ``JobControl/mayProceed()`` said no (acked or retracted since the claim): finished, and
    /// counted as cancelled rather than sent.
    case dropped
    /// Failed for now: try again after `afterMs` (nil: the queue's backoff), unless it was the last attempt.
    case retry(afterMs: Int?, error: String)
    /// Can never succeed: make it a dead letter at once.
    case deadLetter(error: String)
    /// Not attempted on purpose (quiet hours, a gateway held back): due again after `afterMs`, without using up
    /// an attempt; an ack meanwhile still cancels it.
    case deferred(afterMs: Int)
}

/// What a handler may ask the queue while it works on a job.
public struct JobControl: Sendable {
    let queue: DelayQueue
    let job: ClaimedJob
    /// A consumer's checks share round trips.
    var pipeline: CoalescingPipeline?

    init(queue: DelayQueue, job: ClaimedJob, pipeline: CoalescingPipeline? = nil) {
        self.queue = queue
        self.job = job
        self.pipeline = pipeline
    }

    /// Whether the job may still be sent: not cancelled, and the lease is still ours. Ask right before the
    /// gateway call; if `false`, return `.dropped` without sending.
    public func mayProceed() async throws -> Bool {
        guard let pipeline else { return try await self.queue.mayProceed(self.job) }
        let replies = try await pipeline.send(batch: self.queue.mayProceedCommands(self.job))
        return try DelayQueue.mayProceed(self.job, replies[0], replies[1])
    }

    /// Extends the lease now; `false` if the lease was already lost. The consumer already extends it every third
    /// of ``DelayQueueConfiguration/leaseMs`` while the handler runs, so handlers rarely need this.
    public func extendLease() async throws -> Bool {
        try await self.queue.extendLease(self.job) == .extended
    }
}

/// Handles claimed jobs (the push worker implements this).
public typealias QueueJobHandler = @Sendable (ClaimedJob, JobControl) async -> JobResult
