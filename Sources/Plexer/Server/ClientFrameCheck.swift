import NIOCore
import NIOWebSocket

/// RFC 6455 §5.1-5.3 for frames from a client: each is masked, and without a negotiated extension no RSV bit is
/// set. Checked before fragments are reassembled (a reassembled message has no mask of its own); a frame that
/// breaks the rule is dropped and reported, and the connection closes it with 1002.
final class ClientFrameCheck: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = WebSocketFrame
    typealias InboundOut = WebSocketFrame

    struct Violation: Error {}

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = self.unwrapInboundIn(data)
        guard frame.maskKey != nil, !frame.rsv1, !frame.rsv2, !frame.rsv3 else {
            context.fireErrorCaught(Violation())
            return
        }
        context.fireChannelRead(data)
    }
}
