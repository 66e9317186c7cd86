import Foundation
import NIOCore
import NIOHTTP1
import NIOWebSocket

/// One closed-loop RPC run: every connection sends a request, waits for its reply, and sends the next, until the
/// run's end. Confined to the load's single event loop (every method runs there), hence unchecked.
final class RPCLoad: @unchecked Sendable {
    let loop: any EventLoop
    private(set) var latenciesNs: [UInt64] = []
    private(set) var errors = 0
    private var connections: [() -> Void] = []
    private var readyCount = 0
    private let expected: Int
    private var active = 0
    private var endNs: UInt64 = 0
    private let allReady: EventLoopPromise<Void>
    private let allDone: EventLoopPromise<Void>

    init(loop: any EventLoop, connections: Int) {
        self.loop = loop
        self.expected = connections
        self.allReady = loop.makePromise()
        self.allDone = loop.makePromise()
    }

    var ready: EventLoopFuture<Void> { self.allReady.futureResult }
    var done: EventLoopFuture<Void> { self.allDone.futureResult }

    /// A connection can send; `start` sends its first request.
    func connectionReady(start: @escaping () -> Void) {
        self.connections.append(start)
        self.readyCount += 1
        if self.readyCount == self.expected { self.allReady.succeed() }
    }

    func failed(_ reason: String) {
        self.allReady.fail(BenchError("an RPC connection failed: \(reason)"))
        self.allDone.fail(BenchError("an RPC connection failed: \(reason)"))
    }

    /// Every connection starts its loop for `seconds`.
    func begin(seconds: Double) {
        self.endNs = DispatchTime.now().uptimeNanoseconds + UInt64(seconds * 1e9)
        self.active = self.connections.count
        self.latenciesNs.reserveCapacity(Int(seconds * 50_000))
        for start in self.connections { start() }
    }

    /// A reply came for the request sent at `sentNs`; whether the connection sends another.
    func replied(sentNs: UInt64, ok: Bool) -> Bool {
        let now = DispatchTime.now().uptimeNanoseconds
        self.latenciesNs.append(now - sentNs)
        if !ok { self.errors += 1 }
        guard now < self.endNs else {
            self.active -= 1
            if self.active == 0 { self.allDone.succeed() }
            return false
        }
        return true
    }
}

/// Sends `GET /rpc` to the upstream directly over one keep-alive connection, one at a time.
final class DirectRPCHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private let load: RPCLoad
    private let head: HTTPRequestHead
    private var sentNs: UInt64 = 0
    private var ok = true

    init(load: RPCLoad, port: Int) {
        self.load = load
        self.head = HTTPRequestHead(
            version: .http1_1, method: .GET, uri: "/rpc", headers: ["host": "127.0.0.1:\(port)"])
    }

    func channelActive(context: ChannelHandlerContext) {
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        self.load.connectionReady { handler.value.send(context: bound.value) }
        context.fireChannelActive()
    }

    private func send(context: ChannelHandlerContext) {
        self.sentNs = DispatchTime.now().uptimeNanoseconds
        self.ok = true
        context.write(self.wrapOutboundOut(.head(self.head)), promise: nil)
        context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let response): self.ok = response.status == .ok
        case .body: break
        case .end:
            if self.load.replied(sentNs: self.sentNs, ok: self.ok) { self.send(context: context) }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.load.failed("\(error)")
        context.close(promise: nil)
    }
}

/// Sends the same request through the Plexer's `rpc` channel over one WebSocket, one at a time.
final class PlexerRPCHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private let load: RPCLoad
    private var sentNs: UInt64 = 0
    private var number = 0

    init(load: RPCLoad) {
        self.load = load
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = self.unwrapInboundIn(data)
        switch frame.opcode {
        case .text:
            let text = String(buffer: frame.unmaskedData)
            if text.contains(#""ev":"ready""#) {
                let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
                let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
                self.load.connectionReady { handler.value.send(context: bound.value) }
            } else if text.contains(#""id":\#(self.number),"#) {
                let ok = text.contains(#""ok":true,"status":200"#)
                if self.load.replied(sentNs: self.sentNs, ok: ok) { self.send(context: context) }
            }
        case .ping:
            let pong = WebSocketFrame(fin: true, opcode: .pong, maskKey: .random(), data: frame.unmaskedData)
            context.writeAndFlush(self.wrapOutboundOut(pong), promise: nil)
        case .connectionClose:
            self.load.failed("the Plexer closed the socket")
            context.close(promise: nil)
        default:
            break
        }
    }

    private func send(context: ChannelHandlerContext) {
        self.number += 1
        self.sentNs = DispatchTime.now().uptimeNanoseconds
        let text = #"{"ch":"rpc","id":\#(self.number),"method":"GET","path":"/rpc"}"#
        let frame = WebSocketFrame(fin: true, opcode: .text, maskKey: .random(), data: ByteBuffer(string: text))
        context.writeAndFlush(self.wrapOutboundOut(frame), promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.load.failed("\(error)")
        context.close(promise: nil)
    }
}
