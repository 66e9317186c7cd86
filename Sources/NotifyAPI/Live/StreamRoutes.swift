import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NotifyCore

/// `GET /v1/stream`: the user's events as Server-Sent Events, resumable by `Last-Event-ID` (or `?since=`).
///
/// Events: `id: <event id>`, `event: notification`, `data: <event JSON>`. A comment every heartbeat keeps proxies
/// from closing an idle stream. A client too slow to keep up gets `event: overflow` and the stream ends; it
/// reconnects with its last id and misses nothing. On shutdown the stream ends cleanly, and the client's
/// automatic reconnect (with `Last-Event-ID`) reaches another instance. When the user's token expires the stream
/// ends with `event: token-expired` (reconnect with a fresh token). A resume from an id whose successors were
/// already trimmed from the inbox starts with `event: lost` naming the oldest id still kept.
struct StreamRoutes {
    let feed: InboxFeed
    let heartbeatMs: Int

    func register(on group: RouterGroup<APIRequestContext>) {
        group.get { request, context -> Response in
            let user = try context.userID()
            let resume =
                try InboxRoutes.eventID(request.headers[.lastEventID], name: "Last-Event-ID")
                ?? InboxRoutes.eventID(request.uri.queryParameters.get("since"), name: "since")
            let headers: HTTPFields = [
                .contentType: "text/event-stream", .cacheControl: "no-cache",
                HTTPField.Name("X-Accel-Buffering")!: "no",
            ]
            return Response(
                status: .ok, headers: headers,
                body: self.body(
                    user: user, resume: resume, tokenExpiresAt: context.tokenExpiresAt, eventLoop: context.eventLoop))
        }
    }

    private func body(user: String, resume: StreamID?, tokenExpiresAt: Date?, eventLoop: any EventLoop)
        -> ResponseBody
    {
        let feed = self.feed
        let heartbeat = Duration.milliseconds(self.heartbeatMs)
        // Where NIO's loops are Swift's global executor, a task resumes on the loop that woke it: every stream's
        // feed, woken by the one pub/sub connection, would run on that connection's loop (one core of several,
        // and a hop to each stream's own loop for every write). Preferring the stream's connection loop spreads
        // the streams over the cores and writes without a hop.
        let executor = EventLoopTaskExecutor.preferring(eventLoop)
        return ResponseBody { writer in
            try await withTaskExecutorPreference(executor) {
                try await Self.stream(
                    to: &writer, feed: feed, user: user, resume: resume, heartbeat: heartbeat,
                    tokenExpiresAt: tokenExpiresAt)
            }
        }
    }

    private struct TokenExpired: Error {}

    /// One task per stream: the feed writes each event itself, and the hub's ticker wakes it for heartbeats and
    /// the token's expiry. A slow socket holds the feed back (the write waits) until the hub's buffer for it is
    /// full and the feed ends with overflow. On shutdown the ticker ends the feed and the stream finishes cleanly.
    private static func stream(
        to writer: inout any ResponseBodyWriter, feed: InboxFeed, user: String, resume: StreamID?,
        heartbeat: Duration, tokenExpiresAt: Date?
    ) async throws {
        let expiry = tokenExpiresAt.map { ContinuousClock.now + .seconds(max(0, $0.timeIntervalSinceNow)) }
        do {
            // `: ready` tells the client (and tests) that every event from now on will arrive.
            let end = try await feed.run(
                userID: user, resumeAfter: resume, schedule: LiveTicker.Schedule(every: heartbeat, deadline: expiry),
                onReady: { try await writer.write(SSEFrames.ready) },
                onLost: { oldest in try await writer.write(SSEFrames.lost(oldest: oldest)) },
                onTick: {
                    if let expiry, ContinuousClock.now >= expiry {
                        try await writer.write(SSEFrames.tokenExpired)
                        throw TokenExpired()
                    }
                    try await writer.write(SSEFrames.heartbeat)
                }
            ) { event in
                try await writer.write(SSEFrames.notification(event))
            }
            if end == .overflow {
                try await writer.write(SSEFrames.overflow)
            }
        } catch is TokenExpired {}
        try await writer.finish(nil)
    }
}
