import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import Metrics
import NIOCore
import NIOHTTPTypes
import NotifyCore
import RedisClient

/// Serves `GET /v1/stream` on the connection's event loop, in the HTTP/1 pipeline ahead of the router: the same
/// stream as ``StreamRoutes``, at a fraction of the cost per open stream.
///
/// Through the router, a stream holds its connection's task at the depth of the whole middleware chain for as long as
/// it is open, and Swift keeps a task's frame memory at its deepest: 24 KiB of the 37 KiB an idle stream cost
/// (measured with heaptrack at 5,000 streams). Here the authentication, the subscription and the replay run in a
/// short task that ends once the stream is live; then the listener wakes this handler on its event loop, which
/// drains what arrived into the socket, with no task in between and one flush per batch.
///
/// A slow socket stops the draining; events then wait in the listener's bounded buffer, and a reader that falls
/// that far behind gets `event: overflow` and the stream ends. Every other request passes through untouched. A
/// stream request that arrives while the router still answers an earlier request waits for that answer; one after a
/// `Connection: close` request is not served. After a stream the connection closes (requests pipelined behind it
/// get no answer; EventSource never sends any).
final class SSEStreamHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// What every stream handler of a server shares.
    struct Service: Sendable {
        var feed: InboxFeed
        var verifier: UserTokenVerifier
        var heartbeat: Duration
        /// How long a socket may take nothing while events wait (a replayed page, live events) or after the
        /// stream's end before the reader counts as too slow and the connection is closed.
        var stallTimeout: TimeAmount
        var logger: Logger
    }

    static let path = "/v1/stream"

    private enum State {
        /// Requests go to the router.
        case forwarding
        /// A stream request's head came; its end has not.
        case reading(HTTPRequest)
        /// A stream request waits for the router to finish answering an earlier request.
        case waiting(HTTPRequest)
        /// Authenticating, subscribing, replaying (`task`).
        case starting
        /// Live events come from `listener`.
        case live
        /// The stream ended (or the connection closed).
        case closed
    }

    private struct Stalled: Error {}
    /// The server drains while a replay runs.
    private struct Draining: Error {}

    private let service: Service
    private var state = State.forwarding
    private var context: ChannelHandlerContext?
    /// Requests passed to the router whose response has not ended yet.
    private var routerRequests = 0
    /// A request passed to the router asked to close the connection after its answer.
    private var routerCloses = false
    private var task: Task<Void, Never>?
    private var listener: LiveListener?
    /// Armed while a live stream's socket takes nothing: a reader that stays stuck for the stall timeout is too slow.
    private var liveStall: Scheduled<Void>?
    private var expiry: ContinuousClock.Instant?
    private var user = ""
    private var last: StreamID?
    private var isReady = false
    /// The 200 head went out.
    private var headSent = false
    /// Counted in `notify_live_streams` (from the head to the end).
    private var isCounted = false
    private var isLogged = false
    /// The server drains: the stream ends as soon as it is live.
    private var isQuiescing = false
    private var startedAt = ContinuousClock.now

    private static let open = Meter(label: "notify_live_streams")

    init(service: Service) {
        self.service = service
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        // The channel keeps its last read buffer for the next read: at NIO's default first size (2 KiB) that is
        // 2 KiB held by every idle stream. A stream's request fits in 1 KiB; larger requests (every connection
        // starts here, ingest too) grow it after their first read.
        try? context.channel.syncOptions?.setOption(
            ChannelOptions.recvAllocator,
            value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 1_024, maximum: 65_536))
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    /// Whether the stream request was taken from the router (its events are this handler's now).
    private var hasStream: Bool {
        switch self.state {
        case .forwarding: false
        case .reading, .waiting, .starting, .live, .closed: true
        }
    }

    // MARK: Requests

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = self.unwrapInboundIn(data)
        switch self.state {
        case .forwarding:
            if case .head(let head) = part {
                if head.method == .get, Self.isStreamPath(head.path) {
                    // After a request that closes the connection, nothing more is served.
                    self.state = self.routerCloses ? .closed : .reading(head)
                    return
                }
                self.routerRequests += 1
                // Compared as Hummingbird does (exactly), so both agree on whether the connection ends.
                if head.headerFields[.connection] == "close" { self.routerCloses = true }
            }
            context.fireChannelRead(data)
        case .reading(let head):
            // A GET's body, if any, is ignored.
            guard case .end = part else { return }
            if self.routerRequests == 0 {
                self.start(head)
            } else {
                self.state = .waiting(head)
            }
        case .waiting, .starting, .live, .closed:
            break  // pipelined behind a stream: not answered, the connection closes after the stream
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        // The router's answers pass through; their end may let a waiting stream start.
        guard case .end = self.unwrapOutboundIn(data) else {
            context.write(data, promise: promise)
            return
        }
        self.routerRequests = max(0, self.routerRequests - 1)
        context.write(data, promise: promise)
        if self.routerRequests == 0, case .waiting(let head) = self.state {
            self.start(head)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard self.hasStream else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        switch event {
        case is ChannelShouldQuiesceEvent:
            // Not passed on: after it, Hummingbird closes a connection with no request of its own in progress at
            // once, which would cut the stream instead of ending it.
            switch self.state {
            case .reading:
                self.refuse(Problem.unavailable("the server is shutting down; reconnect"))
            case .waiting:
                self.state = .closed
                context.fireUserInboundEventTriggered(event)  // the router's request finishes, then it closes
            case .starting:
                self.isQuiescing = true
            case .live:
                self.finish()
            case .forwarding, .closed:
                break
            }
        case ChannelEvent.inputClosed:
            // A client that half-closes after its request still reads its stream; Hummingbird would close it.
            break
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard self.hasStream else {
            context.fireErrorCaught(error)
            return
        }
        // Bytes the decoder cannot read behind a stream: the router must not answer into the stream.
        self.stop()
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, case .live = self.state {
            self.liveStall?.cancel()
            self.liveStall = nil
            // Not at once: NIO reports writability from inside a flush, which may be one of `pump`'s own.
            let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
            context.eventLoop.execute { handler.value.pump() }
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if self.headSent { self.log(status: 200) }
        self.stop()
        context.fireChannelInactive()
    }

    /// `/v1/stream` as the router would match it (repeated and trailing slashes ignored), with any query.
    static func isStreamPath(_ target: String?) -> Bool {
        guard let target, target.hasPrefix("/") else { return false }
        let path = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0]
        return path.split(separator: "/").elementsEqual(["v1", "stream"])
    }

    // MARK: Starting

    private func start(_ head: HTTPRequest) {
        self.startedAt = .now
        let query = URI(head.path ?? Self.path).queryParameters
        let token: String
        do {
            token = try BearerToken.user(
                authorization: head.headerFields[.authorization], accessToken: query.get("access_token"))
        } catch {
            self.refuse(error)
            return
        }
        self.state = .starting
        guard let loop = self.context?.eventLoop else { return }
        let handler = NIOLoopBound(self, eventLoop: loop)
        let service = self.service
        let (lastEventID, since) = (head.headerFields[.lastEventID], query.get("since"))
        self.task = Self.spawn(on: loop) { @Sendable in
            let verified: (user: String, expiresAt: Date)
            do throws(UserTokenError) {
                verified = try await service.verifier.verifyWithExpiry(token)
            } catch {
                loop.execute { handler.value.refuse(Problem.unauthorized(error.reason)) }
                return
            }
            // As the route: the token first, then the resume point.
            var resume: StreamID?
            do throws(Problem) {
                resume = try InboxRoutes.eventID(lastEventID, name: "Last-Event-ID")
                if resume == nil { resume = try InboxRoutes.eventID(since, name: "since") }
            } catch {
                loop.execute { handler.value.refuse(error) }
                return
            }
            let expiry = ContinuousClock.now + .seconds(max(0, verified.expiresAt.timeIntervalSinceNow))
            loop.execute { handler.value.authenticated(user: verified.user, expiry: expiry) }
            do {
                // A fresh start resumes after the newest event now, read before subscribing (see InboxFeed.run).
                var after = resume
                if resume == nil { after = try await service.feed.inbox.lastEventID(of: verified.user) }
                try Task.checkCancellation()
                try await Self.open(
                    handler, loop: loop, service: service, user: verified.user, after: after,
                    checkLost: resume != nil, expiry: expiry)
            } catch {
                loop.execute { handler.value.fail(error) }
            }
        }
    }

    /// Runs `operation` on `loop` (where the process spreads tasks over the loops).
    private static func spawn(
        on loop: any EventLoop, _ operation: @escaping @Sendable () async -> Void
    ) -> Task<Void, Never> {
        Task(executorPreference: EventLoopTaskExecutor.preferring(loop), operation: operation)
    }

    /// Subscribes, reports lost events, replays, then hands the listener to the handler (on its loop).
    private static func open(
        _ handler: NIOLoopBound<SSEStreamHandler>, loop: any EventLoop, service: Service, user: String,
        after: StreamID?, checkLost: Bool, expiry: ContinuousClock.Instant
    ) async throws {
        let (listener, last) = try await service.feed.open(
            userID: user, after: after, checkLost: checkLost,
            schedule: LiveTicker.Schedule(every: service.heartbeat, deadline: expiry),
            onLost: { oldest in try await Self.write([SSEFrames.lost(oldest: oldest)], to: handler, on: loop) },
            deliver: { page in try await Self.write(page.map(SSEFrames.notification), to: handler, on: loop) })
        loop.execute { handler.value.goLive(listener, last: last) }
    }

    /// Replayed frames (a page), written from the starting task with one flush; returns once they are on the
    /// socket (the replay's back-pressure), or throws when the socket does not take them within the stall timeout,
    /// or when the server drains (the client resumes from the last id it got).
    private static func write(
        _ frames: [ByteBuffer], to handler: NIOLoopBound<SSEStreamHandler>, on loop: any EventLoop
    ) async throws {
        try await loop.flatSubmit { () -> EventLoopFuture<Void> in
            let handler = handler.value
            guard let context = handler.context, case .starting = handler.state, let lastFrame = frames.last else {
                return loop.makeFailedFuture(CancellationError())
            }
            guard !handler.isQuiescing else { return loop.makeFailedFuture(Draining()) }
            handler.sendHead()
            for frame in frames.dropLast() { context.write(handler.wrapOutboundOut(.body(frame)), promise: nil) }
            let written = context.writeAndFlush(handler.wrapOutboundOut(.body(lastFrame)))
            return written.failing(after: handler.service.stallTimeout, with: Stalled())
        }.get()
    }

    private func authenticated(user: String, expiry: ContinuousClock.Instant) {
        self.user = user
        self.expiry = expiry
    }

    /// The 200 head, before the first frame (so a failure before any frame is still a problem answer).
    private func sendHead() {
        guard !self.headSent, let context else { return }
        self.headSent = true
        self.isCounted = true
        Self.open.increment()
        let head = HTTPResponse(
            status: .ok,
            headerFields: [
                .contentType: "text/event-stream", .cacheControl: "no-cache",
                HTTPField.Name("X-Accel-Buffering")!: "no",
            ])
        context.write(self.wrapOutboundOut(.head(head)), promise: nil)
    }

    private func goLive(_ listener: LiveListener, last: StreamID?) {
        guard case .starting = self.state, let context else {
            listener.close()
            return
        }
        if !self.headSent, listener.endReason == .shutdown {
            // The process stops: a new stream is better answered than opened and ended at once.
            listener.close()
            self.refuse(Problem.unavailable("the server is shutting down; reconnect"))
            return
        }
        self.task = nil
        self.state = .live
        self.listener = listener
        self.last = last
        self.sendHead()
        if !self.isReady {
            self.isReady = true
            context.write(self.wrapOutboundOut(.body(SSEFrames.ready)), promise: nil)
        }
        context.flush()
        if self.isQuiescing {
            self.finish()
            return
        }
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let loop = context.eventLoop
        listener.wake { loop.execute { handler.value.pump() } }
    }

    // MARK: Live

    /// Writes what the listener has while the socket takes it, with one flush; handles the listener's end.
    private func pump() {
        guard case .live = self.state, let context, let listener else { return }
        if let expiry = self.expiry, ContinuousClock.now >= expiry {
            // Before anything buffered: nothing published after the token expired goes out.
            context.write(self.wrapOutboundOut(.body(SSEFrames.tokenExpired)), promise: nil)
            return self.finish()
        }
        var written = 0
        defer { InboxFeed.countDelivered(written) }
        while context.channel.isWritable {
            let (items, end) = listener.drain(max: 64)
            for item in items {
                switch item {
                case .message(let payload):
                    guard let event = InboxFeed.liveEvent(payload, after: self.last) else { continue }
                    self.last = event.id
                    context.write(self.wrapOutboundOut(.body(SSEFrames.notification(event))), promise: nil)
                    written += 1
                case .tick:
                    if let expiry = self.expiry, ContinuousClock.now >= expiry {
                        context.write(self.wrapOutboundOut(.body(SSEFrames.tokenExpired)), promise: nil)
                        self.finish()
                        return
                    }
                    context.write(self.wrapOutboundOut(.body(SSEFrames.heartbeat)), promise: nil)
                }
            }
            if let end {
                switch end {
                case .overflow:
                    context.write(self.wrapOutboundOut(.body(SSEFrames.overflow)), promise: nil)
                    self.finish()
                case .disconnected:
                    context.flush()
                    self.resubscribe()
                case .shutdown:
                    self.finish()
                }
                return
            }
            if items.isEmpty { break }
        }
        context.flush()
        self.watchStall(context)
    }

    /// A reader that keeps its connection but stops reading would otherwise hold its buffered events (and its
    /// overflow) forever: `pump` runs only when the socket takes more.
    private func watchStall(_ context: ChannelHandlerContext) {
        guard !context.channel.isWritable, self.liveStall == nil, case .live = self.state else { return }
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        self.liveStall = context.eventLoop.scheduleTask(in: self.service.stallTimeout) { handler.value.liveStalled() }
    }

    private func liveStalled() {
        self.liveStall = nil
        guard case .live = self.state, let context else { return }
        context.write(self.wrapOutboundOut(.body(SSEFrames.overflow)), promise: nil)
        self.finish()
    }

    /// The pub/sub connection dropped (and everything it brought was written): events published meanwhile are
    /// replayed from the inbox after the last one written, before live delivery goes on.
    private func resubscribe() {
        guard case .live = self.state, self.listener != nil else { return }
        guard let context else { return self.stop() }
        self.listener?.close()
        self.listener = nil
        self.state = .starting
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let loop = context.eventLoop
        let (service, user, last, expiry) = (self.service, self.user, self.last, self.expiry ?? .now)
        self.task = Self.spawn(on: loop) { @Sendable in
            do {
                try await Self.open(
                    handler, loop: loop, service: service, user: user, after: last, checkLost: true, expiry: expiry)
            } catch {
                loop.execute { handler.value.fail(error) }
            }
        }
    }

    // MARK: Ending

    /// Ends the stream cleanly (the client reconnects with its last id) and closes the connection once the end is
    /// sent, or after the stall timeout when the reader takes nothing.
    private func finish() {
        switch self.state {
        case .starting, .live: break
        case .forwarding, .reading, .waiting, .closed: return
        }
        let wasSent = self.headSent
        self.stop()
        guard let context else { return }
        if wasSent {
            self.log(status: 200)
            self.closeAfter(context.writeAndFlush(self.wrapOutboundOut(.end(nil))), context: context)
        } else {
            context.close(promise: nil)
        }
    }

    /// A failure while starting: before the head, a problem answer (503 when Redis failed); after it, the stream
    /// ends (a stalled reader's with overflow) and the client reconnects.
    private func fail(_ error: any Error) {
        guard case .starting = self.state else { return }
        guard self.headSent else { return self.refuse(error) }
        if error is Stalled, let context {
            context.write(self.wrapOutboundOut(.body(SSEFrames.overflow)), promise: nil)
        } else if error is Draining || error is CancellationError {
            // ends cleanly; the client resumes
        } else {
            self.service.logger.warning("a stream ended on an error", metadata: ["error": "\(error)"])
        }
        self.finish()
    }

    /// Answers the stream request with problem JSON and closes the connection.
    private func refuse(_ error: any Error) {
        switch self.state {
        case .reading, .waiting, .starting: break
        case .forwarding, .live, .closed: return
        }
        let problem: Problem
        if let error = error as? Problem {
            problem = error
        } else {
            // Redis being down is reported by /readyz and the client's 503; one line per refused reconnect would
            // flood the log.
            self.service.logger.log(
                level: error is RedisClientError ? .debug : .warning, "a stream could not start",
                metadata: ["error": "\(error)"])
            problem = Problem.unavailable("live events are unavailable for now; reconnect later")
        }
        self.stop()
        guard let context else { return }
        var headers = problem.headerFields
        headers[.connection] = "close"
        let body = (try? problem.body(instance: Self.path)) ?? ByteBuffer()
        headers[.contentLength] = "\(body.readableBytes)"
        context.write(
            self.wrapOutboundOut(.head(HTTPResponse(status: problem.status, headerFields: headers))), promise: nil)
        context.write(self.wrapOutboundOut(.body(body)), promise: nil)
        self.closeAfter(context.writeAndFlush(self.wrapOutboundOut(.end(nil))), context: context)
        self.log(status: Int(problem.status.code))
    }

    private func closeAfter(_ written: EventLoopFuture<Void>, context: ChannelHandlerContext) {
        let channel = context.channel
        let grace = context.eventLoop.scheduleTask(in: self.service.stallTimeout) { channel.close(promise: nil) }
        written.whenComplete { _ in
            grace.cancel()
            channel.close(promise: nil)
        }
    }

    /// Releases the stream's subscription and task; idempotent.
    private func stop() {
        if self.isCounted {
            self.isCounted = false
            Self.open.decrement()
        }
        self.state = .closed
        self.liveStall?.cancel()
        self.liveStall = nil
        self.task?.cancel()
        self.task = nil
        self.listener?.close()
        self.listener = nil
    }

    /// The request log line and `hb.requests` (as the router's middlewares), once per stream.
    private func log(status: Int) {
        guard !self.isLogged else { return }
        self.isLogged = true
        let elapsed = (ContinuousClock.now - self.startedAt).components
        let milliseconds = Double(elapsed.seconds) * 1_000 + Double(elapsed.attoseconds) / 1e15
        // As RequestLogMiddleware: the path only, never the query (it may hold the token).
        self.service.logger.debug(
            "request",
            metadata: [
                "http.method": "GET", "http.path": "\(Self.path)", "http.status": "\(status)",
                "http.duration_ms": "\(milliseconds)",
            ])
        Counter(
            label: "hb.requests",
            dimensions: [
                ("http.route", Self.path), ("http.request.method", "GET"), ("http.response.status_code", "\(status)"),
            ]
        ).increment()
        if status >= 400 {
            Counter(
                label: "hb.request.errors",
                dimensions: [("http.route", Self.path), ("http.request.method", "GET"), ("error.type", "\(status)")]
            ).increment()
        }
    }
}
