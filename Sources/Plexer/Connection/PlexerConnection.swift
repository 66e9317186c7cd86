import Foundation
import Logging
import Metrics
import NIOCore
import NIOWebSocket
import NotifyAPI
import NotifyCore
import RedisClient

/// One client's WebSocket after the upgrade: authentication, requests and their replies, live notifications,
/// heartbeats, limits and the close handshake, all on the connection's event loop.
///
/// Like the API's SSE handler it holds no task while idle: requests that wait for something (a token check, Redis,
/// an upstream) run in short tasks that hand their result back to the loop, and live events are drained from the
/// listener's bounded buffer when it wakes the loop. One timer per socket covers the auth timeout, pings, the idle
/// timeout and the token's expiry.
final class PlexerConnection: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    enum Phase {
        /// Waiting for an `auth` frame (no token on the handshake).
        case unauthenticated
        /// Checking the first token; requests that arrive meanwhile wait in `early`.
        case verifying
        case ready
        /// A close frame went out; waiting for the client's.
        case closing
        case closed
    }

    static let subprotocol = "notify.v1"
    /// Requests held while the first token is checked.
    static let maxEarlyRequests = 16

    let services: PlexerServices
    var configuration: PlexerConfiguration { self.services.configuration }
    var phase = Phase.unauthenticated
    var context: ChannelHandlerContext?
    private let handshakeToken: String?
    private let badCredential: String?
    var user = ""
    /// The socket's JWT, kept only where a route forwards it.
    var token: String?
    private var expiry: NIODeadline?
    private var authDeadline: NIODeadline?
    private var lastHeard = NIODeadline.now()
    private var nextPing = NIODeadline.now()
    private var timer: Scheduled<Void>?
    private var early: [ByteBuffer] = []
    /// The latest ping's payload, answered once the socket takes writes again.
    private var pendingPong: ByteBuffer?
    private var rate: RequestRateLimit
    /// Tasks of requests waiting for their reply, by a number of this connection's own.
    var tasks: [Int: Task<Void, Never>] = [:]
    private var nextTaskNumber = 0
    /// The `notify` channel's live feed.
    var feed = NotifyFeed()
    /// The WebSocket channels' upstream sockets, by channel.
    var passthroughs: [String: Passthrough] = [:]
    private var isCounted = false
    /// Holds a place in the process's and (once authenticated) the user's socket counts.
    private var holdsSocketPlace = false
    private var holdsUserPlace = false

    private static let open = Meter(label: "notify_plexer_sockets")
    private static let closes = "notify_plexer_closes_total"

    init(services: PlexerServices, handshakeToken: String?, badCredential: String? = nil) {
        self.services = services
        self.handshakeToken = handshakeToken
        self.badCredential = badCredential
        self.rate = RequestRateLimit(
            perSecond: services.configuration.requestsPerSecond, burst: services.configuration.requestBurst,
            now: .now())
    }

    // MARK: Lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.isCounted = true
        Self.open.increment()
        // An idle socket keeps its last read buffer; small frames fit in 1 KiB, larger ones grow it as they come.
        try? context.channel.syncOptions?.setOption(
            ChannelOptions.recvAllocator,
            value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 1_024, maximum: 65_536))
        let now = NIODeadline.now()
        self.lastHeard = now
        // The first ping at a random point of the interval, so sockets that connected together do not ping together.
        let interval = Int64(self.configuration.pingIntervalMs)
        self.nextPing = now + .milliseconds(Int64.random(in: interval / 2...interval))
        self.holdsSocketPlace = self.services.counts.admitSocket()
        if !self.holdsSocketPlace {
            self.phase = .verifying
            let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
            context.eventLoop.execute { handler.value.close(.tryAgainLater) }
        } else if let reason = self.badCredential {
            self.phase = .verifying
            let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
            context.eventLoop.execute { handler.value.close(.authFailed, reason: "authentication failed: \(reason)") }
        } else if let token = self.handshakeToken {
            self.phase = .verifying
            self.verify(token, id: nil)
        } else {
            self.authDeadline = now + .milliseconds(Int64(self.configuration.authTimeoutMs))
        }
        self.armTimer()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.stop()
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.stop()
        context.fireChannelInactive()
    }

    /// Releases everything the socket holds; idempotent.
    private func stop() {
        self.phase = .closed
        if self.isCounted {
            self.isCounted = false
            Self.open.decrement()
        }
        if self.holdsSocketPlace {
            self.holdsSocketPlace = false
            self.services.counts.releaseSocket()
        }
        if self.holdsUserPlace {
            self.holdsUserPlace = false
            self.services.counts.release(user: self.user)
        }
        self.timer?.cancel()
        self.timer = nil
        for task in self.tasks.values { task.cancel() }
        self.tasks.removeAll()
        self.stopFeed()
        self.stopPassthroughs()
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = self.unwrapInboundIn(data)
        self.lastHeard = .now()
        switch frame.opcode {
        case .text:
            var text = frame.unmaskedData
            guard String(validating: text.readableBytesView, as: UTF8.self) != nil else {
                return self.close(.invalidUTF8)
            }
            self.received(text.readSlice(length: text.readableBytes) ?? text)
        case .binary:
            self.close(.unsupportedData)
        case .ping:
            guard self.phase != .closed, self.phase != .closing else { return }
            // Pings count against the request rate (a flood of them would queue pongs without bound), and one
            // pong answers the latest ping when the socket cannot take it now (RFC 6455 §5.5.3).
            if self.phase == .ready, case .close = self.rate.take(now: .now()) { return self.close(.rateLimited) }
            guard context.channel.isWritable else {
                self.pendingPong = frame.unmaskedData
                return
            }
            let pong = WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)
            context.writeAndFlush(self.wrapOutboundOut(pong), promise: nil)
        case .connectionClose:
            self.closeReceived(frame)
        case .pong:
            break  // only counts as heard
        default:
            // Reserved opcodes (continuations come reassembled).
            self.close(.protocolError, reason: "unknown opcode")
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        switch error {
        case NIOWebSocketFrameAggregator.Error.accumulatedFrameSizeIsTooLarge:
            self.close(.messageTooBig)
        case is NIOWebSocketFrameAggregator.Error:
            self.close(.protocolError)
        case is FrameCheck.Violation:
            self.close(.protocolError, reason: "client frames must be masked, without RSV bits")
        case is NIOWebSocketError:
            // WebSocketProtocolErrorHandler sent the close frame (1002 or 1009) and closes once it is written;
            // a reader that takes nothing would keep the socket, so it goes after the close grace anyway.
            self.stop()
            self.closeWithinGrace(context)
        default:
            self.close(.internalError)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            self.drain()
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, let payload = self.pendingPong {
            self.pendingPong = nil
            context.writeAndFlush(
                self.wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: payload)), promise: nil)
        }
        if context.channel.isWritable {
            // Not at once: NIO reports writability from inside a flush.
            let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
            context.eventLoop.execute { handler.value.resumePassthroughs() }
        } else {
            self.pausePassthroughs()
        }
        if context.channel.isWritable, case .live = self.feed.state {
            self.feed.stall?.cancel()
            self.feed.stall = nil
            // Not at once: NIO reports writability from inside a flush, which may be one of `pumpFeed`'s own.
            let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
            context.eventLoop.execute { handler.value.pumpFeed() }
        }
        context.fireChannelWritabilityChanged()
    }

    private func received(_ text: ByteBuffer) {
        switch self.phase {
        case .unauthenticated:
            // Only an `auth` frame may come first.
            guard case .success(let request) = PlexerRequest.parse(text), request.channel == "auth",
                let token = try? request.string("token", maxBytes: 16_384)
            else {
                return self.close(.authFailed, reason: "authenticate first: send {\"ch\":\"auth\",\"token\":…}")
            }
            self.phase = .verifying
            self.authDeadline = nil
            self.verify(token, id: request.id)
        case .verifying:
            guard self.early.count < Self.maxEarlyRequests else {
                return self.close(.authFailed, reason: "too many requests before authentication finished")
            }
            self.early.append(text)
        case .ready:
            switch self.rate.take(now: .now()) {
            case .allowed:
                self.dispatch(text)
            case .refused(let retryMs):
                let envelope = PlexerRequest.parse(text)
                let (channel, id) = Self.envelope(envelope)
                self.send(
                    PlexerFrames.error(
                        channel: channel, id: id,
                        PlexerFailure("rate_limited", "too many requests; retry later", retryMs: retryMs)))
            case .close:
                self.close(.rateLimited)
            }
        case .closing, .closed:
            break
        }
    }

    private static func envelope(_ result: Result<PlexerRequest, PlexerRequest.ParseFailure>) -> (String?, RequestID?) {
        switch result {
        case .success(let request): (request.channel, request.id)
        case .failure(let failure): (failure.channel, failure.id)
        }
    }

    /// Routes one request to its channel.
    private func dispatch(_ text: ByteBuffer) {
        let request: PlexerRequest
        switch PlexerRequest.parse(text) {
        case .success(let parsed): request = parsed
        case .failure(let failure):
            return self.send(PlexerFrames.error(channel: failure.channel, id: failure.id, failure.failure))
        }
        do throws(PlexerFailure) {
            switch request.channel {
            case "auth":
                try request.allowOnly(["token"])
                guard let token = try request.string("token", maxBytes: 16_384) else {
                    throw .badFrame("token is required")
                }
                self.verify(token, id: request.id)
            case "notify":
                try self.notifyRequest(request)
            default:
                let upstreams = self.services.upstreams
                guard let route = upstreams.routes[request.channel] else {
                    throw PlexerFailure("unknown_channel", "no channel \(request.channel) is configured")
                }
                if route.kind == .websocket { return try self.passthroughRequest(request, route: route) }
                let outgoing = try UpstreamRequest(request, route: route, user: self.user, token: self.token)
                self.answer(request) { try await upstreams.call(outgoing, route: route) }
            }
        } catch {
            self.send(PlexerFrames.error(channel: request.channel, id: request.id, error))
        }
    }

    // MARK: Authentication

    /// Checks `token`: the first one makes the socket ready (or closes it with 4001); a later one (a refresh) must
    /// be the same user's and moves the expiry.
    private func verify(_ token: String, id: RequestID?) {
        let verifier = self.services.verifier
        self.run(id: id, channel: "auth", countsInFlight: self.phase == .ready) {
            do throws(UserTokenError) {
                let verified = try await verifier.verifyWithExpiry(token)
                return .success(verified)
            } catch {
                return .failure(error)
            }
        } then: { connection, result in
            connection.verified(result, id: id, token: token)
        }
    }

    private func verified(
        _ result: Result<(user: String, expiresAt: Date), UserTokenError>, id: RequestID?, token: String
    ) {
        let expiresAt = (try? result.get()).map { Int64($0.expiresAt.timeIntervalSince1970) } ?? 0
        switch (self.phase, result) {
        case (.verifying, .failure(let error)):
            self.close(.authFailed, reason: "authentication failed: \(error.reason)")
        case (.verifying, .success(let verified)):
            guard self.services.counts.admit(user: verified.user) else { return self.close(.tooManySockets) }
            self.holdsUserPlace = true
            self.user = verified.user
            if self.services.keepsTokens { self.token = token }
            self.setExpiry(verified.expiresAt)
            self.phase = .ready
            self.send(
                PlexerFrames.ready(
                    user: verified.user, expiresAt: expiresAt, maxMessageBytes: self.configuration.maxMessageBytes))
            if let id { self.send(PlexerFrames.reply(channel: "auth", id: id, members: "\"expires_at\":\(expiresAt)")) }
            let early = self.early
            self.early = []
            for text in early where self.phase == .ready { self.received(text) }
        case (.ready, .failure(let error)):
            self.send(PlexerFrames.error(channel: "auth", id: id, PlexerFailure("unauthorized", error.reason)))
        case (.ready, .success(let verified)):
            guard verified.user == self.user else {
                return self.send(
                    PlexerFrames.error(
                        channel: "auth", id: id,
                        PlexerFailure("forbidden", "the token is another user's; a socket keeps its user")))
            }
            self.setExpiry(verified.expiresAt)
            if self.services.keepsTokens { self.token = token }
            self.send(PlexerFrames.reply(channel: "auth", id: id, members: "\"expires_at\":\(expiresAt)"))
        case (.unauthenticated, _), (.closing, _), (.closed, _):
            break
        }
    }

    private func setExpiry(_ date: Date) {
        // Clamped: an absurd `exp` (1e19) must not overflow the milliseconds below.
        let seconds = min(max(0, date.timeIntervalSinceNow), 10 * 365 * 86_400)
        self.expiry = .now() + .milliseconds(Int64(seconds * 1_000))
        self.armTimer()
    }

    // MARK: Requests that wait

    /// Runs `operation` in a task on this loop (bounded by `maxInFlight` when `countsInFlight`), then `then` with
    /// its result back on the loop, unless the socket closed meanwhile.
    func run<Result: Sendable>(
        id: RequestID?, channel: String, countsInFlight: Bool = true,
        _ operation: @escaping @Sendable () async -> Result,
        then: @escaping (PlexerConnection, Result) -> Void
    ) {
        guard let context else { return }
        if countsInFlight, self.tasks.count >= self.configuration.maxInFlight {
            return self.send(
                PlexerFrames.error(
                    channel: channel, id: id,
                    PlexerFailure(
                        "too_many_in_flight",
                        "at most \(self.configuration.maxInFlight) requests may wait for their reply at once")))
        }
        let loop = context.eventLoop
        let handler = NIOLoopBound(self, eventLoop: loop)
        let number = self.nextTaskNumber
        self.nextTaskNumber += 1
        let deliver = NIOLoopBound(then, eventLoop: loop)
        self.tasks[number] = Task(executorPreference: EventLoopTaskExecutor.preferring(loop)) {
            let result = await operation()
            loop.execute {
                let connection = handler.value
                guard connection.tasks.removeValue(forKey: number) != nil else { return }
                deliver.value(connection, result)
            }
        }
    }

    // MARK: Outbound

    /// Writes one message; a reader that lets more than `maxOutboundBytes` pile up is closed as too slow.
    func send(_ text: ByteBuffer) {
        guard let context, self.phase != .closed, self.phase != .closing else { return }
        // What waits already, not counting this message: one large reply (an upstream's) is not a slow reader.
        if let pending = try? context.channel.syncOptions?.getOption(ChannelOptions.bufferedWritableBytes),
            pending > self.configuration.maxOutboundBytes
        {
            return self.close(.tooSlow)
        }
        context.writeAndFlush(self.wrapOutboundOut(WebSocketFrame(fin: true, opcode: .text, data: text)), promise: nil)
    }

    // MARK: Timer

    /// One timer per socket, at the earliest of: auth deadline, token expiry, idle limit, next ping.
    private func armTimer() {
        guard let context, self.phase != .closed else { return }
        self.timer?.cancel()
        let idleAt = self.lastHeard + .milliseconds(Int64(self.configuration.idleTimeoutMs))
        let due = [self.authDeadline, self.expiry, idleAt, self.nextPing].compactMap { $0 }.min() ?? idleAt
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        self.timer = context.eventLoop.scheduleTask(deadline: due) { handler.value.timerFired() }
    }

    private func timerFired() {
        self.timer = nil
        guard let context, self.phase != .closed else { return }
        let now = NIODeadline.now()
        if let deadline = self.authDeadline, now >= deadline, self.phase == .unauthenticated {
            return self.close(.authTimeout)
        }
        if let expiry = self.expiry, now >= expiry {
            return self.close(.tokenExpired)
        }
        if now - self.lastHeard >= .milliseconds(Int64(self.configuration.idleTimeoutMs)) {
            return self.close(.idle)
        }
        if now >= self.nextPing {
            self.nextPing = now + .milliseconds(Int64(self.configuration.pingIntervalMs))
            let ping = WebSocketFrame(fin: true, opcode: .ping, data: context.channel.allocator.buffer(capacity: 0))
            context.writeAndFlush(self.wrapOutboundOut(ping), promise: nil)
        }
        self.armTimer()
    }

    // MARK: Closing

    /// Sends a close frame and closes the connection once the client answers, or after `closeGraceMs`.
    func close(_ code: PlexerCloseCode, reason: String? = nil) {
        guard let context, self.phase != .closing, self.phase != .closed else { return }
        self.stop()
        self.phase = .closing
        Counter(label: Self.closes, dimensions: [("code", "\(code.rawValue)")]).increment()
        var data = context.channel.allocator.buffer(capacity: 125)
        data.write(webSocketErrorCode: code.errorCode)
        // A close frame's payload is at most 125 bytes: the code and 123 bytes of UTF-8 reason.
        var text = Substring(reason ?? code.reason)
        while text.utf8.count > 123 { text = text.dropLast() }
        data.writeString(String(text))
        let channel = context.channel
        self.closeWithinGrace(context)
        context.writeAndFlush(self.wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: data)))
            .whenFailure { _ in channel.close(promise: nil) }
    }

    /// Drops the connection after `closeGraceMs` unless it closed by then: every close path is bounded, also for
    /// a reader that takes nothing (its close frame would wait behind what it does not read).
    private func closeWithinGrace(_ context: ChannelHandlerContext) {
        let channel = context.channel
        let grace = context.eventLoop.scheduleTask(in: .milliseconds(Int64(self.configuration.closeGraceMs))) {
            channel.close(promise: nil)
        }
        channel.closeFuture.whenComplete { _ in grace.cancel() }
    }

    /// The client's close frame: the answer to ours, or its own close, which is echoed (RFC 6455 §5.5.1).
    private func closeReceived(_ frame: WebSocketFrame) {
        guard let context else { return }
        let channel = context.channel
        if self.phase == .closing {
            channel.close(promise: nil)
            return
        }
        self.stop()
        self.phase = .closing
        var data = frame.unmaskedData
        // RFC 6455 §7.4: codes a peer may send are 1000-1003, 1007-1011 and 3000-4999; a close frame of one byte,
        // another code, or a reason that is not UTF-8 is a protocol error.
        var echo = context.channel.allocator.buffer(capacity: 2)
        if data.readableBytes > 0 {
            let code = data.readInteger(as: UInt16.self).map(Int.init) ?? 0
            let valid =
                [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011].contains(code) || (3000...4999).contains(code)
            let reasonIsText = String(validating: data.readableBytesView, as: UTF8.self) != nil
            echo.write(webSocketErrorCode: WebSocketErrorCode(codeNumber: valid && reasonIsText ? code : 1002))
        }
        self.closeWithinGrace(context)
        context.writeAndFlush(self.wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: echo)))
            .whenComplete { _ in channel.close(promise: nil) }
    }

    /// The process stops: clients are told when to come back (jittered, so they do not all return at once) and
    /// closed with 1001.
    func drain() {
        guard self.phase != .closing, self.phase != .closed else { return }
        let retry = Int.random(in: self.configuration.drainRetryMinMs...self.configuration.drainRetryMaxMs)
        if self.phase == .ready { self.send(PlexerFrames.reconnect(retryMs: retry)) }
        self.close(.goingAway)
    }
}
