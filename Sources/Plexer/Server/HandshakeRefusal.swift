import HTTPTypes
import NIOCore
import NIOHTTP1
import NIOWebSocket
import NotifyAPI

/// Answers every request that is not upgraded (another path, no WebSocket handshake, a handshake without
/// `notify.v1`) with a problem JSON and closes the connection, and closes a connection that has not upgraded within
/// `timeout` (a slow handshake must not hold a file descriptor). Removed from the pipeline once a socket upgrades.
final class HandshakeRefusal: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let timeout: TimeAmount
    private var timer: Scheduled<Void>?

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        self.timer = context.eventLoop.scheduleTask(in: self.timeout) { channel.close(promise: nil) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.timer?.cancel()
        self.timer = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let head) = self.unwrapInboundIn(data) else { return }
        let problem =
            HandshakeTarget(head)?.refusal
            ?? Problem.invalidRequest("the request target is not a valid URI")
        var headers = HTTPHeaders()
        for field in problem.headerFields { headers.add(name: field.name.rawName, value: field.value) }
        let body = (try? problem.body(instance: PlexerServer.path)) ?? ByteBuffer()
        headers.add(name: "Content-Length", value: "\(body.readableBytes)")
        headers.add(name: "Connection", value: "close")
        let status = HTTPResponseStatus(statusCode: Int(problem.status.code))
        context.write(
            self.wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))),
            promise: nil)
        context.write(self.wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        let channel = context.channel
        context.writeAndFlush(self.wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A refused upgrade is reported here before its request arrives as a plain one, which is answered above.
        if error is NIOWebSocketUpgradeError { return }
        context.close(promise: nil)
    }
}
