import NIOCore
import NIOWebSocket

/// One client's socket to a WebSocket upstream, after the handshake: frames from the upstream go to the client's
/// connection (`onEvent`, on the same event loop), frames from the client are masked and written here. Pings are
/// answered, the close handshake is honoured both ways (RFC 6455 §5.5), and the end is reported once.
final class UpstreamSocket: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    enum Event {
        /// A whole message (fragments reassembled): text or binary.
        case message(WebSocketOpcode, ByteBuffer)
        /// The socket ended: the upstream's close code and reason, or 1006 when the connection just dropped.
        case closed(code: Int, reason: String)
    }

    /// How long a close frame waits for the peer's before the connection is dropped.
    static let closeGrace = TimeAmount.seconds(2)

    private let onEvent: (UpstreamSocket, Event) -> Void
    private var context: ChannelHandlerContext?
    /// Our close frame went out; the upstream's answer ends the socket.
    private var isClosing = false
    private var closeCode: Int?
    private var closeReason = ""
    private var isReported = false
    /// The connection while its handshake runs (before this handler is in its pipeline): what `close` ends then.
    private var connecting: (any Channel)?
    /// Gives the socket's place in the route's count back (idempotent): at once when it is closed while connecting.
    var releasePlace: (@Sendable () -> Void)?

    init(onEvent: @escaping (UpstreamSocket, Event) -> Void) {
        self.onEvent = onEvent
    }

    var channel: (any Channel)? { self.context?.channel }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.connecting = nil
    }

    /// The TCP connection is up and its handshake runs; closing the socket meanwhile closes it.
    func connected(_ channel: any Channel) {
        guard self.isClosing else {
            self.connecting = channel
            return
        }
        channel.close(promise: nil)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = self.unwrapInboundIn(data)
        switch frame.opcode {
        case .text, .binary:
            guard !self.isClosing else { return }
            self.onEvent(self, .message(frame.opcode, frame.unmaskedData))
        case .ping:
            guard !self.isClosing else { return }
            self.write(.pong, frame.unmaskedData, on: context, promise: nil)
        case .connectionClose:
            self.closeReceived(frame, context: context)
        case .pong, .continuation:
            break  // continuations come reassembled
        default:
            self.protocolError(context, reason: "reserved opcode")
        }
    }

    /// The upstream's close frame: the answer to ours, or its own close, echoed (RFC 6455 §5.5.1). A client
    /// leaves closing the TCP connection to the server (§7.1.1), within the close grace.
    private func closeReceived(_ frame: WebSocketFrame, context: ChannelHandlerContext) {
        var data = frame.unmaskedData
        var code = 1005
        if data.readableBytes > 0 {
            // §7.4: 1000-1003, 1007-1014 and 3000-4999 may be sent; a one-byte payload, any other code or a reason
            // that is not UTF-8 is a protocol error.
            let received = data.readInteger(as: UInt16.self).map(Int.init) ?? 0
            let valid =
                [1000, 1001, 1002, 1003].contains(received) || (1007...1014).contains(received)
                || (3000...4999).contains(received)
            guard valid, let reason = String(validating: data.readableBytesView, as: UTF8.self) else {
                return self.protocolError(context, reason: "invalid close frame")
            }
            code = received
            self.closeReason = reason
        }
        self.closeCode = self.closeCode ?? code
        if !self.isClosing {
            self.isClosing = true
            var echo = context.channel.allocator.buffer(capacity: 2)
            if code != 1005 { echo.write(webSocketErrorCode: WebSocketErrorCode(codeNumber: code)) }
            self.write(.connectionClose, echo, on: context, promise: nil)
            self.closeWithinGrace(context)
        }
        self.report()
    }

    /// Closes with 1002 and reports it.
    private func protocolError(_ context: ChannelHandlerContext, reason: String) {
        self.closeCode = 1002
        self.closeReason = reason
        self.report()
        self.close(code: .protocolError, reason: reason)
    }

    private func closeWithinGrace(_ context: ChannelHandlerContext) {
        let channel = context.channel
        let grace = context.eventLoop.scheduleTask(in: Self.closeGrace) { channel.close(promise: nil) }
        channel.closeFuture.whenComplete { _ in grace.cancel() }
    }

    func channelInactive(context: ChannelHandlerContext) {
        // Not at once: a protocol error closes the connection before its error reaches this handler (the close
        // frame's write completes inline), and that error, not a plain drop, is why the socket ended.
        let socket = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.execute { socket.value.report() }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        switch error {
        case NIOWebSocketFrameAggregator.Error.accumulatedFrameSizeIsTooLarge:
            self.closeCode = 1009
            self.closeReason = "the upstream sent a message over the route's limit"
            self.report()
            self.close(code: .messageTooLarge, reason: "message too big")
        case NIOWebSocketError.invalidFrameLength:
            // One frame over the limit: WebSocketProtocolErrorHandler sent the 1009 close and closes the connection.
            self.closeCode = 1009
            self.closeReason = "the upstream sent a message over the route's limit"
            self.report()
            self.closeWithinGrace(context)
        case is NIOWebSocketError:
            // WebSocketProtocolErrorHandler sent its close (1002) and closes the connection.
            self.closeCode = 1002
            self.closeReason = "protocol error"
            self.report()
            self.closeWithinGrace(context)
        case is NIOWebSocketFrameAggregator.Error, is FrameCheck.Violation:
            self.protocolError(context, reason: "protocol error")
        default:
            self.closeCode = self.closeCode ?? 1006
            self.report()
            context.close(promise: nil)
        }
    }

    /// Writes one client message (masked, as a client must); `false` when the socket is closing or gone (its end
    /// may not be reported yet), so the message was not sent.
    func send(_ opcode: WebSocketOpcode, _ data: ByteBuffer) -> Bool {
        guard let context, !self.isClosing, context.channel.isActive else { return false }
        self.write(opcode, data, on: context, promise: nil)
        return true
    }

    /// Bytes written but not yet taken by the upstream.
    var bufferedBytes: Int {
        (try? self.context?.channel.syncOptions?.getOption(ChannelOptions.bufferedWritableBytes)) ?? 0
    }

    /// Whether the upstream's messages are read: off while the client's socket takes nothing.
    func setReading(_ reading: Bool) {
        guard let channel = self.context?.channel else { return }
        try? channel.syncOptions?.setOption(ChannelOptions.autoRead, value: reading)
    }

    /// Starts the close handshake; the connection goes once the upstream answers, or after ``closeGrace``. Not
    /// reported: the client's side closed it.
    func close(code: WebSocketErrorCode = .normalClosure, reason: String = "") {
        guard let context else {
            // The handshake still runs: drop it, so its place is free at once.
            self.isClosing = true
            self.isReported = true
            self.connecting?.close(promise: nil)
            self.connecting = nil
            self.releasePlace?()
            return
        }
        guard !self.isClosing else { return }
        self.isClosing = true
        self.isReported = true
        var data = context.channel.allocator.buffer(capacity: 2 + reason.utf8.count)
        data.write(webSocketErrorCode: code)
        data.writeString(reason)
        let channel = context.channel
        // A paused socket must read the upstream's answer.
        self.setReading(true)
        self.closeWithinGrace(context)
        let written = context.eventLoop.makePromise(of: Void.self)
        written.futureResult.whenFailure { _ in channel.close(promise: nil) }
        self.write(.connectionClose, data, on: context, promise: written)
    }

    private func write(
        _ opcode: WebSocketOpcode, _ data: ByteBuffer, on context: ChannelHandlerContext,
        promise: EventLoopPromise<Void>?
    ) {
        let frame = WebSocketFrame(fin: true, opcode: opcode, maskKey: .random(), data: data)
        context.writeAndFlush(self.wrapOutboundOut(frame), promise: promise)
    }

    private func report() {
        guard !self.isReported else { return }
        self.isReported = true
        self.onEvent(self, .closed(code: self.closeCode ?? 1006, reason: self.closeReason))
    }
}
