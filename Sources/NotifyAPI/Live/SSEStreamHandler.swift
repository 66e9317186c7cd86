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
/// Through the router, a stream holds its connection's task at the depth of the whole middleware chain for as long
/// as it is open, and Swift keeps a task's frame memory at its deepest: 24 KiB of the 37 KiB an idle stream cost
/// (measured with heaptrack at 5,000 streams). Here the authentication, the subscription and the replay run in a
/// short task that ends once the stream is live; then each event goes from the pub/sub connection to this handler
/// with one hop to its event loop and is written to the socket, with no task in between.
///
/// Every other request passes through untouched. A stream request that arrives while the router still answers an
/// earlier request on the connection waits for that answer. After a stream the connection closes (requests
/// pipelined behind it are not answered; EventSource never sends any).
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

    private let service: Service
    private var state = State.forwarding
    private var context: ChannelHandlerContext?
    /// Requests passed to the router whose response has not ended yet.
    private var routerRequests = 0
    private var task: Task<Void, Never>?
    private var listener: LiveListener?
    private var user = ""
    private var expiry: ContinuousClock.Instant?
    private var last: StreamID?
    private var isReady = false
    /// The 200 head went out: the stream counts as open until it ends.
    private var headSent = false
    private var isCounted = false
    /// Frames written while the socket was not writable; more than the hub's buffer limit is an overflow.
    private var queued = CircularBuffer<ByteBuffer>(initialCapacity: 0)
    private var startedAt = ContinuousClock.now

    private static let open = Meter(label: "notify_live_streams")

    init(service: Service) {
        self.service = service
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    // MARK: Requests

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = self.unwrapInboundIn(data)
        switch self.state {
        case .forwarding:
            if case .head(let head) = part {
                if head.method == .get, Self.isStreamPath(head.path) {
                    self.state = .reading(head)
                    return
                }
                self.routerRequests += 1
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
        if case .end = self.unwrapOutboundIn(data) {
            self.routerRequests -= 1
            if self.routerRequests == 0, case .waiting(let head) = self.state {
                context.write(data, promise: promise)
                self.start(head)
                return
            }
        }
        context.write(data, promise: promise)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, case .live = self.state {
            while context.channel.isWritable, let frame = self.queued.popFirst() {
                context.write(self.wrapOutboundOut(.body(frame)), promise: nil)
            }
            context.flush()
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.stop()
        context.fireChannelInactive()
    }

    static func isStreamPath(_ path: String?) -> Bool {
        guard let path else { return false }
        return path == Self.path
            || (path.hasPrefix(Self.path) && path.utf8.dropFirst(Self.path.utf8.count).first == UInt8(ascii: "?"))
    }

    // MARK: Starting

    private func start(_ head: HTTPRequest) {
        self.startedAt = .now
        let token: String
        let resume: StreamID?
        do {
            let query = URI(head.path ?? Self.path).queryParameters
            token = try BearerToken.user(
                authorization: head.headerFields[.authorization], accessToken: query.get("access_token"))
            resume =
                try InboxRoutes.eventID(head.headerFields[.lastEventID], name: "Last-Event-ID")
                ?? InboxRoutes.eventID(query.get("since"), name: "since")
        } catch {
            self.refuse(error)
            return
        }
        self.state = .starting
        guard let loop = self.context?.eventLoop else { return }
        let handler = NIOLoopBound(self, eventLoop: loop)
        let service = self.service
        self.task = Self.spawn(on: loop) { @Sendable in
            let verified: (user: String, expiresAt: Date)
            do throws(UserTokenError) {
                verified = try await service.verifier.verifyWithExpiry(token)
            } catch {
                loop.execute { handler.value.refuse(Problem.unauthorized(error.reason)) }
                return
            }
            let expiry = ContinuousClock.now + .seconds(max(0, verified.expiresAt.timeIntervalSinceNow))
            loop.execute { handler.value.accept(user: verified.user, expiry: expiry) }
            do {
                // A fresh start resumes after the newest event now, read before subscribing (see InboxFeed.run).
                var after = resume
                if resume == nil { after = try await service.feed.inbox.lastEventID(of: verified.user) }
                try await Self.open(
                    handler, loop: loop, service: service, user: verified.user, after: after, checkLost: resume != nil,
                    expiry: expiry)
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
            onLost: { oldest in try await Self.write(SSEFrames.lost(oldest: oldest), to: handler, on: loop) },
            deliver: { event in try await Self.write(SSEFrames.notification(event), to: handler, on: loop) })
        loop.execute { handler.value.goLive(listener, last: last) }
    }

    /// A replayed frame, written from the starting task; returns once it is on the socket (the replay's
    /// back-pressure).
    private static func write(
        _ frame: ByteBuffer, to handler: NIOLoopBound<SSEStreamHandler>, on loop: any EventLoop
    ) async throws {
        try await loop.flatSubmit { () -> EventLoopFuture<Void> in
            guard let context = handler.value.context, case .starting = handler.value.state else {
                return loop.makeFailedFuture(CancellationError())
            }
            return context.writeAndFlush(handler.value.wrapOutboundOut(.body(frame)))
        }.get()
    }

    private func accept(user: String, expiry: ContinuousClock.Instant) {
        guard case .starting = self.state, let context else { return }
        self.user = user
        self.expiry = expiry
        self.headSent = true
        self.isCounted = true
        Self.open.increment()
        let head = HTTPResponse(
            status: .ok,
            headerFields: [
                .contentType: "text/event-stream", .cacheControl: "no-cache",
                HTTPField.Name("X-Accel-Buffering")!: "no",
            ])
        context.writeAndFlush(self.wrapOutboundOut(.head(head)), promise: nil)
    }

    private func goLive(_ listener: LiveListener, last: StreamID?) {
        guard case .starting = self.state, let context else {
            listener.close()
            return
        }
        self.task = nil
        self.state = .live
        self.listener = listener
        self.last = last
        if !self.isReady {
            self.isReady = true
            context.writeAndFlush(self.wrapOutboundOut(.body(SSEFrames.ready)), promise: nil)
        }
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let loop = context.eventLoop
        listener.deliver { item in
            loop.execute { handler.value.live(item) }
        }
    }

    // MARK: Live

    private func live(_ item: LiveListener.Item?) {
        guard case .live = self.state else { return }
        switch item {
        case .message(let payload):
            guard let event = InboxFeed.liveEvent(payload, after: self.last) else { return }
            self.last = event.id
            self.send(SSEFrames.notification(event))
        case .tick:
            if let expiry = self.expiry, ContinuousClock.now >= expiry {
                self.send(SSEFrames.tokenExpired)
                self.finish()
            } else {
                self.send(SSEFrames.heartbeat)
            }
        case nil:
            switch self.listener?.endReason {
            case .overflow:
                self.send(SSEFrames.overflow)
                self.finish()
            case .disconnected:
                self.resubscribe()
            case .shutdown, nil:
                self.finish()
            }
        }
    }

    private func send(_ frame: ByteBuffer) {
        guard let context else { return }
        if self.queued.isEmpty, context.channel.isWritable {
            context.writeAndFlush(self.wrapOutboundOut(.body(frame)), promise: nil)
            return
        }
        // A reader this far behind reconnects and resumes from its last id instead of growing our buffers.
        guard self.queued.count < self.service.feed.hub.bufferLimit else {
            self.queued.removeAll()
            context.writeAndFlush(self.wrapOutboundOut(.body(SSEFrames.overflow)), promise: nil)
            self.finish()
            return
        }
        self.queued.append(frame)
    }

    /// The pub/sub connection dropped: events published meanwhile are replayed from the inbox after the last one
    /// written, before live delivery goes on.
    private func resubscribe() {
        guard let context else { return }
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

    /// Ends the stream cleanly (the client reconnects with its last id) and closes the connection.
    private func finish() {
        guard let context else { return }
        let wasLive = self.headSent
        self.stop()
        guard wasLive else { return }
        for frame in self.queued { context.write(self.wrapOutboundOut(.body(frame)), promise: nil) }
        self.queued.removeAll()
        context.writeAndFlush(self.wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
        self.log(status: 200)
    }

    /// A failure after the head: the stream ends (the client reconnects); before it: 503, or the problem.
    private func fail(_ error: any Error) {
        guard case .starting = self.state else { return }
        if self.headSent {
            self.service.logger.warning("a stream ended on an error", metadata: ["error": "\(error)"])
            self.finish()
        } else {
            self.refuse(error)
        }
    }

    /// Answers the stream request with problem JSON and closes the connection.
    private func refuse(_ error: any Error) {
        guard let context else { return }
        let problem =
            error as? Problem
            ?? Problem.unavailable("live events are unavailable for now; reconnect later")
        if !(error is Problem) {
            self.service.logger.warning("a stream could not start", metadata: ["error": "\(error)"])
        }
        self.stop()
        var headers = problem.headerFields
        headers[.connection] = "close"
        let body = (try? problem.body(instance: Self.path)) ?? ByteBuffer()
        headers[.contentLength] = "\(body.readableBytes)"
        context.write(
            self.wrapOutboundOut(.head(HTTPResponse(status: problem.status, headerFields: headers))), promise: nil)
        context.write(self.wrapOutboundOut(.body(body)), promise: nil)
        context.writeAndFlush(self.wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
        self.log(status: Int(problem.status.code))
    }

    /// Releases the stream's subscription and task; idempotent.
    private func stop() {
        if self.isCounted {
            self.isCounted = false
            Self.open.decrement()
        }
        self.state = .closed
        self.task?.cancel()
        self.task = nil
        self.listener?.close()
        self.listener = nil
    }

    private func log(status: Int) {
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
