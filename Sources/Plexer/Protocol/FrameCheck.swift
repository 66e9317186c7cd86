import NIOCore
import NIOWebSocket

/// RFC 6455 §5.1-5.3 for frames from the peer: a client's are masked and a server's are not, and without a
/// negotiated extension no RSV bit is set. Checked before fragments are reassembled (a reassembled message has no
/// mask of its own); a frame that breaks the rule is dropped and reported, and the connection closes with 1002.
final class FrameCheck: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = WebSocketFrame
    typealias InboundOut = WebSocketFrame

    struct Violation: Error {}

    /// Frames come from a client (masked) or from a server (unmasked).
    private let fromClient: Bool

    init(fromClient: Bool) {
        self.fromClient = fromClient
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = self.unwrapInboundIn(data)
        guard (frame.maskKey != nil) == self.fromClient, !frame.rsv1, !frame.rsv2, !frame.rsv3 else {
            context.fireErrorCaught(Violation())
            return
        }
        context.fireChannelRead(data)
    }
}
