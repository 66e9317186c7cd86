import Metrics
import NIOCore
import RedisClient

/// One user's events from a resume point on, with no gap and no duplicate: the SSE stream and the Plexer's
/// `notify` channel both read through it.
///
/// It subscribes first, then replays the inbox after the last id delivered, then passes live events on, dropping
/// any id not newer than the last one delivered (an event can arrive both ways). When the pub/sub connection
/// drops, it subscribes again and replays what it may have missed; when the reader is too slow, it ends.
public struct InboxFeed: Sendable {
    /// Why a feed ended.
    public enum End: Sendable, Hashable {
        /// The reader fell behind; it should reconnect and resume from its last id.
        case overflow
        /// The process is shutting down.
        case shutdown
    }

    public let hub: LiveHub
    public let inbox: Inbox
    /// Events read from the inbox per round trip while replaying.
    public let replayPageSize: Int

    private static let delivered = Counter(label: "notify_live_events_delivered_total")

    public init(hub: LiveHub, inbox: Inbox, replayPageSize: Int = 200) {
        self.hub = hub
        self.inbox = inbox
        self.replayPageSize = replayPageSize
    }

    /// Delivers `userID`'s events after `resumeAfter` (or, when `nil`, from now on) to `deliver`, in order, until
    /// the reader is too slow, the process shuts down, or the calling task is cancelled.
    ///
    /// `onReady` runs once, when the feed is subscribed and caught up: every event ingested from then on will be
    /// delivered. `deliver` may suspend (a slow socket): meanwhile live events wait in the listener's bounded
    /// buffer.
    ///
    /// `onLost` runs before the replay when events after `resumeAfter` were already trimmed from the inbox, with
    /// the oldest id still kept: the reader learns that it missed some instead of skipping them silently.
    ///
    /// `onTick` runs when `schedule` is due (a heartbeat, a token's expiry), between events; it may throw to end
    /// the feed.
    public func run(
        userID: String, resumeAfter: StreamID?, schedule: LiveTicker.Schedule? = nil,
        onReady: () async throws -> Void = {}, onLost: (StreamID?) async throws -> Void = { _ in },
        onTick: () async throws -> Void = {}, deliver: (InboxEvent) async throws -> Void
    ) async throws -> End {
        // A fresh start resumes after the newest event now, read before subscribing: an event ingested between
        // the read and the subscription is then replayed, not lost.
        var last = resumeAfter
        if resumeAfter == nil { last = try await self.inbox.lastEventID(of: userID) }
        var ready = false
        var checkLost = resumeAfter != nil
        while true {
            try Task.checkCancellation()
            let listener: LiveListener
            (listener, last) = try await self.open(
                userID: userID, after: last, checkLost: checkLost, schedule: schedule, onLost: onLost,
                deliver: { page in
                    for event in page { try await deliver(event) }
                })
            defer { listener.close() }
            checkLost = true
            if !ready {
                ready = true
                try await onReady()
            }
            while let item = await listener.next() {
                switch item {
                case .tick:
                    try await onTick()
                case .message(let payload):
                    guard let event = Self.liveEvent(payload, after: last) else { continue }
                    try await deliver(event)
                    Self.countDelivered()
                    last = event.id
                }
            }
            try Task.checkCancellation()
            switch listener.endReason {
            case .disconnected:
                continue
            case .overflow:
                return .overflow
            case .shutdown, nil:
                return .shutdown
            }
        }
    }

    /// The first steps of a feed, for readers that take the live events themselves: subscribes to `userID`'s live
    /// events, reports events trimmed after `last` (with `checkLost`, through `onLost`), and replays the inbox
    /// after `last` (from its start when `nil`) through `deliver`. Returns the listener, whose items come next
    /// (pass each message through ``liveEvent(_:after:)``), and the last id delivered. Throws with nothing left
    /// subscribed.
    ///
    /// The replay comes a page at a time (``replayPageSize`` events), so a reader can write a page with one flush;
    /// `deliver` returns once the page is written (or throws to stop: the reader then resumes from its last id).
    public func open(
        userID: String, after last: StreamID?, checkLost: Bool, schedule: LiveTicker.Schedule?,
        onLost: (StreamID?) async throws -> Void, deliver: ([InboxEvent]) async throws -> Void
    ) async throws -> (listener: LiveListener, last: StreamID?) {
        let listener = try await self.hub.listen(to: userID, schedule: schedule)
        do {
            // Before each replay from a known id (a resume, or again after a dropped pub/sub connection): events
            // trimmed since then are reported, not skipped silently.
            if checkLost, let last {
                let check = try await self.inbox.lostEvents(of: userID, after: last)
                if check.lost { try await onLost(check.oldestKept) }
            }
            var last = last
            try await self.replay(userID: userID, after: &last, deliver: deliver)
            return (listener, last)
        } catch {
            listener.close()
            throw error
        }
    }

    /// The event of a live message, unless it is not newer than `last` (it came both ways: replayed and live)
    /// or unreadable.
    public static func liveEvent(_ payload: ByteBuffer, after last: StreamID?) -> InboxEvent? {
        guard let event = InboxEvent(liveMessage: payload) else { return nil }
        if let last, event.id <= last { return nil }
        return event
    }

    /// Counts events written to readers (`notify_live_events_delivered_total`); replayed ones are counted here.
    public static func countDelivered(_ count: Int = 1) {
        Self.delivered.increment(by: count)
    }

    private func replay(
        userID: String, after last: inout StreamID?, deliver: ([InboxEvent]) async throws -> Void
    ) async throws {
        while true {
            let page = try await self.inbox.events(of: userID, after: last, limit: self.replayPageSize)
            if page.isEmpty { return }
            try await deliver(page)
            Self.delivered.increment(by: page.count)
            last = page.last?.id
            if page.count < self.replayPageSize { return }
        }
    }
}
