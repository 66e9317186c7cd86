/// What a handler decided about a job.
public enum JobResult: Sendable, Hashable {
    /// Delivered (or deliberately dropped, e.g. cancelled): the job is finished.
    case done
    /// Failed for now: try again after `afterMs` (nil: the queue's backoff), unless it was the last attempt.
    case retry(afterMs: Int?, error: String)
    /// Can never succeed: make it a dead letter at once.
    case deadLetter(error: String)
}

/// What a handler may ask the queue while it works on a job.
public struct JobControl: Sendable {
    let queue: DelayQueue
    let job: ClaimedJob

    /// Whether the job may still be sent: not cancelled, and the lease is still ours. Ask right before the
    /// gateway call; if `false`, return `.done` without sending.
    public func mayProceed() async throws -> Bool {
        try await self.queue.mayProceed(self.job)
    }

    /// Extends the lease for a slow send; `false` if the lease was already lost.
    public func extendLease() async throws -> Bool {
        try await self.queue.extendLease(self.job) == .extended
    }
}

/// Handles claimed jobs (the push worker implements this).
public typealias QueueJobHandler = @Sendable (ClaimedJob, JobControl) async -> JobResult
