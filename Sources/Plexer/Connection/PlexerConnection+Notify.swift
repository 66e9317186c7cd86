import DelayQueue
import Logging
import NIOCore
import NIOWebSocket
import NotifyAPI
import NotifyCore
import RedisClient

/// The `notify` channel's live feed of one socket.
struct NotifyFeed {
    enum State {
        case off
        /// Subscribing and replaying (`task`).
        case starting
        case live(LiveListener)
    }

    var state = State.off
    /// Tells the current start from an earlier one that a new `resume` replaced.
    var generation = 0
    var task: Task<Void, Never>?
    /// The last event written to the socket: where a replay after a dropped pub/sub connection starts.
    var last: StreamID?
    /// Armed while the socket takes nothing and live events wait: a reader stuck for the stall timeout is too slow.
    var stall: Scheduled<Void>?
    /// The id of the `resume` whose reply waits for the start in progress.
    var pendingReply: RequestID?
}

/// A replayed page the socket did not take within the stall timeout.
private struct Stalled: Error {}

extension PlexerConnection {
    /// How long the socket may take none of its notify messages before the reader counts as too slow.
    var stallTimeout: TimeAmount { .milliseconds(Int64(self.configuration.stallTimeoutMs)) }

    func notifyRequest(_ request: PlexerRequest) throws(PlexerFailure) {
        let operation = try request.operation()
        switch operation {
        case "resume":
            try request.allowOnly(["op", "after"])
            let after = try request.eventID("after")
            self.startFeed(after: after, fromNow: after == nil, replyTo: request.id, isResume: true)
        case "ack":
            try request.allowOnly(["op", "ids", "up_to"])
            let acknowledger = self.services.acknowledger
            let texts = try request.strings("ids", maxCount: acknowledger.maxIDs)
            let upTo = try request.eventID("up_to")
            guard texts != nil || upTo != nil else { throw .invalid("send ids, up_to, or both") }
            var ids: [StreamID] = []
            for (index, text) in (texts ?? []).enumerated() {
                guard let id = StreamID(text) else { throw .invalid("ids[\(index)] must be an event id") }
                ids.append(id)
            }
            let (user, events) = (self.user, ids)
            self.answer(request) {
                let summary = try await acknowledger.ack(userID: user, ids: events, upTo: upTo)
                return "\"cancelled\":\(summary.cancelled),\"in_flight\":\(summary.markedClaimed),"
                    + "\"already_sent\":\(summary.alreadyDone)"
            }
        case "inbox":
            try request.allowOnly(["op", "after", "before", "limit", "order"])
            let after = try request.eventID("after")
            let before = try request.eventID("before")
            let limit = try request.integer("limit", in: 1...self.configuration.maxInboxPage) ?? 50
            let orderText = try request.string("order", maxBytes: 16) ?? Inbox.Order.newestFirst.rawValue
            guard let order = Inbox.Order(rawValue: orderText) else { throw .invalid("order must be newest or oldest") }
            let (inbox, user) = (self.services.feed.inbox, self.user)
            self.answer(request) {
                let events = try await inbox.page(of: user, after: after, before: before, limit: limit, order: order)
                let next = events.count == limit ? events.last.map { "\"\($0.id)\"" } ?? "null" : "null"
                return "\"events\":[\(events.map(\.json).joined(separator: ","))],\"next\":\(next)"
            }
        default:
            throw PlexerFailure("unknown_op", "channel notify has no operation \(operation)")
        }
    }

    /// Runs a request's work and replies with the members it returns, or with the error frame its failure maps to.
    func answer(_ request: PlexerRequest, _ work: @escaping @Sendable () async throws -> String) {
        let logger = self.services.logger
        self.run(id: request.id, channel: request.channel) { () -> Result<String, PlexerFailure> in
            do {
                return .success(try await work())
            } catch let failure as PlexerFailure {
                return .failure(failure)
            } catch is RedisClientError {
                return .failure(PlexerFailure("unavailable", "the notification store is unavailable; retry later"))
            } catch {
                logger.warning("a request failed", metadata: ["error": "\(error)"])
                return .failure(PlexerFailure("internal", "the request failed"))
            }
        } then: { connection, result in
            switch result {
            case .success(let members):
                guard request.id != nil else { return }
                connection.send(PlexerFrames.reply(channel: request.channel, id: request.id, members: members))
            case .failure(let failure):
                connection.send(PlexerFrames.error(channel: request.channel, id: request.id, failure))
            }
        }
    }

    // MARK: Feed

    /// Subscribes and replays from `after` (or, `fromNow`, after the newest event now), then goes live. A `resume`
    /// gets its reply once the replay is written; a restart after a dropped pub/sub connection has no reply.
    func startFeed(after: StreamID?, fromNow: Bool, replyTo id: RequestID?, isResume: Bool) {
        guard let context else { return }
        if case .starting = self.feed.state, let replaced = self.feed.pendingReply {
            // Every request gets its answer: a resume overtaken by a later one is not left waiting.
            self.send(
                PlexerFrames.error(
                    channel: "notify", id: replaced, PlexerFailure("replaced", "a later resume replaced this one")))
        }
        self.stopFeed()
        self.feed.pendingReply = isResume ? id : nil
        self.feed.generation += 1
        self.feed.state = .starting
        let generation = self.feed.generation
        let loop = context.eventLoop
        let handler = NIOLoopBound(self, eventLoop: loop)
        let (service, user) = (self.services.feed, self.user)
        let replyTo = isResume ? id : nil
        self.feed.task = Task(executorPreference: EventLoopTaskExecutor.preferring(loop)) { @Sendable in
            do {
                let (listener, last, replayed) = try await Self.openFeed(
                    service, user: user, after: after, fromNow: fromNow, handler: handler, generation: generation)
                loop.execute {
                    handler.value.goLive(
                        listener, last: last, generation: generation, replyTo: replyTo, replayed: replayed)
                }
            } catch {
                loop.execute { handler.value.feedFailed(error, generation: generation, replyTo: replyTo) }
            }
        }
    }

    private static func openFeed(
        _ service: InboxFeed, user: String, after: StreamID?, fromNow: Bool, handler: NIOLoopBound<PlexerConnection>,
        generation: Int
    ) async throws -> (LiveListener, StreamID?, Int) {
        // From now: resume after the newest event, read before subscribing (see InboxFeed.run).
        let start = fromNow ? try await service.inbox.lastEventID(of: user) : after
        try Task.checkCancellation()
        var replayed = 0
        let (listener, last) = try await service.open(
            userID: user, after: start, checkLost: !fromNow, schedule: nil,
            onLost: { oldest in
                try await Self.write([PlexerFrames.lost(oldest: oldest)], to: handler, generation: generation)
            },
            deliver: { page in
                try await Self.write(page.map(PlexerFrames.notification), to: handler, generation: generation)
                replayed += page.count
            })
        return (listener, last, replayed)
    }

    /// Replayed messages (a page), written from the feed's task with one flush; returns once they are on the
    /// socket (the replay's back-pressure), or throws when the socket does not take them within the stall timeout,
    /// or the socket closes or drains.
    private static func write(
        _ texts: [ByteBuffer], to handler: NIOLoopBound<PlexerConnection>, generation: Int
    ) async throws {
        let loop = handler.eventLoop
        try await loop.flatSubmit { () -> EventLoopFuture<Void> in
            let connection = handler.value
            guard let context = connection.context, connection.phase == .ready,
                connection.feed.generation == generation, let last = texts.last
            else {
                return loop.makeFailedFuture(CancellationError())
            }
            for text in texts.dropLast() {
                context.write(connection.wrapOutboundOut(.init(fin: true, opcode: .text, data: text)), promise: nil)
            }
            let written = context.writeAndFlush(
                connection.wrapOutboundOut(.init(fin: true, opcode: .text, data: last)))
            return written.failing(after: connection.stallTimeout, with: Stalled())
        }.get()
    }

    private func goLive(
        _ listener: LiveListener, last: StreamID?, generation: Int, replyTo id: RequestID?, replayed: Int
    ) {
        guard let context, self.phase == .ready, self.feed.generation == generation, case .starting = self.feed.state
        else {
            listener.close()
            return
        }
        self.feed.task = nil
        self.feed.pendingReply = nil
        self.feed.state = .live(listener)
        self.feed.last = last
        if id != nil {
            self.send(PlexerFrames.reply(channel: "notify", id: id, members: "\"replayed\":\(replayed)"))
        }
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let loop = context.eventLoop
        listener.wake { loop.execute { handler.value.pumpFeed() } }
    }

    private func feedFailed(_ error: any Error, generation: Int, replyTo id: RequestID?) {
        guard self.phase == .ready, self.feed.generation == generation, case .starting = self.feed.state else { return }
        self.feed.task = nil
        self.feed.pendingReply = nil
        self.feed.state = .off
        if error is Stalled { return self.close(.tooSlow) }
        if !(error is RedisClientError) && !(error is CancellationError) {
            self.services.logger.warning("a notify feed failed to start", metadata: ["error": "\(error)"])
        }
        // The socket stays: its other channels work, and the client resumes the feed after a backoff.
        if let id {
            self.send(
                PlexerFrames.error(
                    channel: "notify", id: id,
                    PlexerFailure("unavailable", "live events are unavailable for now; resume later")))
        } else {
            self.send(PlexerFrames.feedEnded(reason: "unavailable"))
        }
    }

    /// Writes what the listener has while the socket takes it, with one flush; handles the listener's end.
    func pumpFeed() {
        guard let context, self.phase == .ready, case .live(let listener) = self.feed.state else { return }
        var written = 0
        defer { InboxFeed.countDelivered(written) }
        while context.channel.isWritable {
            let (items, end) = listener.drain(max: 64)
            for item in items {
                guard case .message(let payload) = item,
                    let event = InboxFeed.liveEvent(payload, after: self.feed.last)
                else { continue }
                self.feed.last = event.id
                context.write(
                    self.wrapOutboundOut(.init(fin: true, opcode: .text, data: PlexerFrames.notification(event))),
                    promise: nil)
                written += 1
            }
            if let end {
                context.flush()
                switch end {
                case .overflow:
                    self.close(.tooSlow)
                case .disconnected:
                    // Everything the old subscription brought is written: replay from the last one, then live.
                    guard case .live = self.feed.state else { return }
                    self.startFeed(after: self.feed.last, fromNow: false, replyTo: nil, isResume: false)
                case .shutdown:
                    self.drain()
                }
                return
            }
            if items.isEmpty { break }
        }
        context.flush()
        if !context.channel.isWritable, self.feed.stall == nil {
            let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
            self.feed.stall = context.eventLoop.scheduleTask(in: self.stallTimeout) {
                handler.value.feed.stall = nil
                handler.value.close(.tooSlow)
            }
        }
    }

    /// Ends the feed's task or subscription; idempotent.
    func stopFeed() {
        self.feed.task?.cancel()
        self.feed.task = nil
        if case .live(let listener) = self.feed.state { listener.close() }
        self.feed.state = .off
        self.feed.stall?.cancel()
        self.feed.stall = nil
    }
}
