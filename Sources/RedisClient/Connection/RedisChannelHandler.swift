import NIOCore

/// Writes commands and matches replies to them in order (pipelining), on one connection.
///
/// The connection flushes (it coalesces writes from many tasks into one flush). A reply that takes longer than
/// the command timeout fails every command in flight and closes the connection, since later replies could no longer
/// be matched. On a subscriber connection, pub/sub messages are handed to `onPush` instead of being matched.
final class RedisChannelHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = RedisRequest
    typealias OutboundOut = ByteBuffer

    private struct InFlight {
        var request: RedisRequest
        var remaining: Int
        var deadline: NIODeadline
    }

    private let decoder = RedisReplyDecoder()
    private var inFlight = CircularBuffer<InFlight>(initialCapacity: 64)
    private let commandTimeout: TimeAmount
    private let onPush: (@Sendable (RedisPushMessage) -> Void)?
    private let writable: WritableSignal?
    private var timeoutCheck: RepeatedTask?

    init(
        commandTimeout: TimeAmount, onPush: (@Sendable (RedisPushMessage) -> Void)? = nil,
        writable: WritableSignal? = nil
    ) {
        self.commandTimeout = commandTimeout
        self.onPush = onPush
        self.writable = writable
    }

    // MARK: Lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        let interval = TimeAmount.nanoseconds(max(self.commandTimeout.nanoseconds / 4, 1_000_000))
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let context = NIOLoopBound(context, eventLoop: context.eventLoop)
        self.timeoutCheck = context.value.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) {
            _ in
            handler.value.checkTimeout(context: context.value)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.timeoutCheck?.cancel()
        self.failAll(RedisClientError(.connectionClosed, "connection handler removed"))
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.timeoutCheck?.cancel()
        self.failAll(RedisClientError(.connectionClosed, "connection closed by peer"))
        self.writable?.fire()  // requests still in the outbox fail as not sent
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { self.writable?.fire() }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.failAllAndClose(RedisClientError(.connectionClosed, "connection error: \(error)"), context: context)
    }

    // MARK: Outbound

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = self.unwrapOutboundIn(data)
        // Not a flag set in channelActive: NIO completes the connect promise before firing channelActive.
        guard context.channel.isActive else {
            request.fail(.notSent)
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        self.inFlight.append(
            InFlight(request: request, remaining: request.expectedReplies, deadline: .now() + self.commandTimeout))
        context.write(self.wrapOutboundOut(request.bytes), promise: promise)
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = self.unwrapInboundIn(data)
        do {
            try self.decoder.feed(buffer)
            while let value = try self.decoder.next() {
                self.deliver(value)
            }
        } catch {
            self.failAllAndClose(error, context: context)
        }
    }

    private func deliver(_ value: RedisValue) {
        if let onPush, let push = RedisPushMessage(value) {
            if case .confirmation = push, !self.inFlight.isEmpty {
                // A (un)subscribe confirmation answers the oldest pub/sub command in flight.
            } else {
                onPush(push)
                return
            }
        }
        guard var head = self.inFlight.first else {
            return  // An unsolicited reply (e.g. a server-side unsubscribe): nothing waits for it.
        }
        head.remaining -= 1
        switch head.request.reply {
        case .single(let promise):
            self.inFlight.removeFirst()
            promise.succeed(value)
        case .batch(let collector):
            collector.values.append(value)
            if head.remaining == 0 {
                self.inFlight.removeFirst()
                collector.promise.succeed(collector.values)
            } else {
                self.inFlight[self.inFlight.startIndex].remaining = head.remaining
            }
        }
    }

    // MARK: Failure

    private func checkTimeout(context: ChannelHandlerContext) {
        guard let head = self.inFlight.first, head.deadline < .now() else { return }
        self.failAllAndClose(
            RedisClientError(.commandTimeout, "no reply within \(self.commandTimeout.nanoseconds / 1_000_000) ms"),
            context: context)
    }

    /// Closes first, then fails: a caller that reacts to the failure by sending again must find this connection
    /// already inactive, so the pool does not hand it out.
    private func failAllAndClose(_ error: RedisClientError, context: ChannelHandlerContext) {
        let failed = self.inFlight
        self.inFlight.removeAll(keepingCapacity: false)
        context.close(promise: nil)
        for entry in failed {
            entry.request.fail(error)
        }
    }

    private func failAll(_ error: RedisClientError) {
        let failed = self.inFlight
        self.inFlight.removeAll(keepingCapacity: true)
        for entry in failed {
            entry.request.fail(error)
        }
    }
}
