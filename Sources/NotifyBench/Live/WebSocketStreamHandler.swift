import Dispatch
import NIOCore
import NIOHTTP1
import NIOWebSocket

/// One user's event stream over a WebSocket: Notify's Plexer (after `ready` it sends `resume` and is ready once
/// that is answered) or nchan's websocket subscriber (ready once upgraded). Every text message that carries the
/// generator's stamp and number is an arrival.
final class WebSocketStreamHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private let load: LiveLoad
    private let user: Int
    private var report: StreamReport

    init(load: LiveLoad, user: Int) {
        self.load = load
        self.user = user
        self.report = StreamReport(load: load, user: user)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if self.load.target.kind == .nchan { self.report.ready() }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = self.unwrapInboundIn(data)
        switch frame.opcode {
        case .text:
            let now = DispatchTime.now().uptimeNanoseconds
            let text = frame.unmaskedData
            if let (stamp, number) = SSEEventScanner.stampAndNumber(in: text.readableBytesView) {
                self.load.arrived(event: number, on: self.user, stampNs: stamp, nowNs: now)
            } else if !self.report.isReady {
                let view = text.readableBytesView
                if view.firstRange(of: Self.readyMark) != nil {
                    self.send(#"{"ch":"notify","op":"resume","id":"r"}"#, context: context)
                } else if view.firstRange(of: Self.resumedMark) != nil {
                    self.report.ready()
                }
            }
        case .ping:
            let pong = WebSocketFrame(fin: true, opcode: .pong, maskKey: .random(), data: frame.unmaskedData)
            context.writeAndFlush(self.wrapOutboundOut(pong), promise: nil)
        case .connectionClose:
            var data = frame.unmaskedData
            if data.readWebSocketErrorCode() == WebSocketErrorCode(codeNumber: 4004) { self.report.sawOverflow = true }
            context.close(promise: nil)
        default:
            break
        }
    }

    private func send(_ text: String, context: ChannelHandlerContext) {
        let frame = WebSocketFrame(fin: true, opcode: .text, maskKey: .random(), data: ByteBuffer(string: text))
        context.writeAndFlush(self.wrapOutboundOut(frame), promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.report.ended()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private static let readyMark = Array(#""ev":"ready""#.utf8)
    private static let resumedMark = Array(#""id":"r","ok":true"#.utf8)
}

/// Sends a WebSocket stream's handshake request once connected; the upgrade handler adds the WebSocket headers.
final class WebSocketHandshakeSender: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private let head: HTTPRequestHead

    init(head: HTTPRequestHead) {
        self.head = head
    }

    func channelActive(context: ChannelHandlerContext) {
        context.write(self.wrapOutboundOut(.head(self.head)), promise: nil)
        context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // Only a refused upgrade gets here (an upgraded stream's frames go to the stream handler).
        if case .head(let response) = self.unwrapInboundIn(data) {
            context.fireErrorCaught(BenchError("WebSocket upgrade refused: HTTP \(response.status.code)"))
            context.close(promise: nil)
        }
    }
}
