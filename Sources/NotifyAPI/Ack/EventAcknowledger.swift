import DelayQueue
import Metrics
import NotifyCore

/// Acks a user's events: the app has them, so their pushes must not go out. `POST /v1/ack` and the Plexer's
/// `notify` channel both ack through it.
public struct EventAcknowledger: Sendable {
    public let queue: DelayQueue
    /// Most ids in one ack.
    public let maxIDs: Int
    private static let cancelled = Counter(label: "notify_pushes_cancelled_by_ack_total")

    public init(queue: DelayQueue, maxIDs: Int) {
        self.queue = queue
        self.maxIDs = maxIDs
    }

    /// Cancels the pending pushes of `userID`'s events `ids` and of all its events up to `upTo` (inclusive).
    public func ack(userID: String, ids: [StreamID], upTo: StreamID?) async throws -> CancelSummary {
        var summary = CancelSummary()
        if let upTo {
            summary = try await self.queue.cancelUpTo(userID: userID, eventID: upTo)
        }
        if !ids.isEmpty {
            let more = try await self.queue.cancelPending(userID: userID, eventIDs: ids)
            summary.cancelled += more.cancelled
            summary.markedClaimed += more.markedClaimed
            summary.alreadyDone += more.alreadyDone
            summary.unknown += more.unknown
        }
        Self.cancelled.increment(by: summary.cancelled)
        return summary
    }
}
