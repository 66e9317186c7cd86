import NIOCore
import NotifyCore

/// A job to schedule: who gets which push, as an opaque payload the push worker understands.
public struct QueueJob: Sendable {
    public var id: JobID
    /// Opaque bytes (the push worker's JSON), 1 byte to `maxPayloadBytes`.
    public var payload: ByteBuffer
    /// The inbox event the push is for, so "ack up to this id" can cancel the job; `nil` if not in an inbox.
    public var eventID: StreamID?

    public init(id: JobID, payload: ByteBuffer, eventID: StreamID? = nil) {
        self.id = id
        self.payload = payload
        self.eventID = eventID
    }
}

/// A job a consumer holds: its lease token proves it, and only the holder can settle it.
public struct ClaimedJob: Sendable, Hashable {
    public var id: JobID
    public var shard: Int
    public var payload: ByteBuffer
    /// 1 on the first try.
    public var attempt: Int
    /// Fencing token of this claim; settling with an older token is refused.
    public var leaseToken: String
    /// When the job was due (ms, Redis clock).
    public var dueAtMs: Int64
    /// When it was claimed (ms, Redis clock).
    public var claimedAtMs: Int64
}

/// The result of ``DelayQueue/schedule(_:inMs:)``.
public enum ScheduleOutcome: Sendable, Hashable {
    /// Scheduled, due at this time (ms, Redis clock).
    case scheduled(dueAtMs: Int64)
    /// A job with this id is already queued (or finished recently): nothing changed.
    case duplicate
    /// Not scheduled: the user already has ``DelayQueueConfiguration/maxPendingPerUser`` pushes waiting.
    case limited
}

/// The result of a cancel.
public enum CancelOutcome: String, Sendable, Hashable {
    /// It was waiting and will never be sent.
    case cancelled
    /// A worker had already claimed it; it is dropped before the gateway call.
    case markedClaimed
    /// It was already sent or cancelled.
    case alreadyDone
    /// No such job.
    case unknown
}

/// What a bulk cancel (ack up to an event) did.
public struct CancelSummary: Sendable, Hashable {
    public var cancelled: Int
    public var markedClaimed: Int
    public var alreadyDone: Int
    public var unknown: Int

    public init(cancelled: Int = 0, markedClaimed: Int = 0, alreadyDone: Int = 0, unknown: Int = 0) {
        self.cancelled = cancelled
        self.markedClaimed = markedClaimed
        self.alreadyDone = alreadyDone
        self.unknown = unknown
    }
}

/// The result of settling a claimed job.
public enum SettleOutcome: String, Sendable, Hashable {
    case acked, retried, dead, released, extended
    /// It was cancelled while claimed: dropped, not retried.
    case cancelled
    /// The lease token is no longer the job's: the lease expired and the job went elsewhere.
    case stale
}

/// One claim call's result.
public struct ClaimBatch: Sendable {
    public var shard: Int
    public var jobs: [ClaimedJob]
    /// Redis' now when claimed.
    public var nowMs: Int64
    /// Due time of the shard's next waiting job, if any.
    public var nextDueMs: Int64?
    /// Earliest lease deadline in the shard, if any (expired leases are taken back by the next claim).
    public var nextLeaseDeadlineMs: Int64?
}
