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

    init(onEvent: @escaping (UpstreamSocket, Event) -> Void) {
        self.onEvent = onEvent
    }

    var channel: (any Channel)? { self.context?.channel }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
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
            self.write(.pong, frame.unmaskedData, on: context)
        case .connectionClose:
            var data = frame.unmaskedData
            let code = data.readInteger(as: UInt16.self).map(Int.init)
            self.closeCode = self.closeCode ?? code ?? 1005
            self.closeReason = data.readString(length: data.readableBytes) ?? ""
            let channel = context.channel
            if self.isClosing {
                channel.close(promise: nil)
            } else {
                // Echo the code (RFC 6455 §5.5.1), then close: the upstream ended the socket.
                self.isClosing = true
                var echo = context.channel.allocator.buffer(capacity: 2)
                if let code { echo.write(webSocketErrorCode: WebSocketErrorCode(codeNumber: code)) }
                self.write(.connectionClose, echo, on: context).whenComplete { _ in channel.close(promise: nil) }
            }
            self.report()
        default:
            break  // pongs; continuations come reassembled
        }
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
            let channel = context.channel
            context.eventLoop.scheduleTask(in: Self.closeGrace) { channel.close(promise: nil) }
        default:
            // Other protocol errors were answered the same way (1002); anything else ends the connection.
            self.closeCode = self.closeCode ?? 1002
            self.closeReason = "protocol error"
            self.report()
            context.close(promise: nil)
        }
    }

    /// Writes one client message (masked, as a client must).
    func send(_ opcode: WebSocketOpcode, _ data: ByteBuffer) {
        guard let context, !self.isClosing else { return }
        self.write(opcode, data, on: context)
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
        guard let context, !self.isClosing else { return }
        self.isClosing = true
        self.isReported = true
        var data = context.channel.allocator.buffer(capacity: 2 + reason.utf8.count)
        data.write(webSocketErrorCode: code)
        data.writeString(reason)
        let channel = context.channel
        let grace = context.eventLoop.scheduleTask(in: Self.closeGrace) { channel.close(promise: nil) }
        channel.closeFuture.whenComplete { _ in grace.cancel() }
        self.write(.connectionClose, data, on: context).whenFailure { _ in channel.close(promise: nil) }
    }

    @discardableResult
    private func write(_ opcode: WebSocketOpcode, _ data: ByteBuffer, on context: ChannelHandlerContext)
        -> EventLoopFuture<Void>
    {
        let frame = WebSocketFrame(fin: true, opcode: opcode, maskKey: .random(), data: data)
        return context.writeAndFlush(self.wrapOutboundOut(frame))
    }

    private func report() {
        guard !self.isReported else { return }
        self.isReported = true
        self.onEvent(self, .closed(code: self.closeCode ?? 1006, reason: self.closeReason))
    }
}
