import Foundation
import NIOCore
import NIOHTTP1

/// One keep-alive connection that posts events, one at a time: idle again once the server answered.
final class PublishHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private let load: LiveLoad
    private var context: ChannelHandlerContext?
    private var status: UInt = 0
    private var inFlight: Int?
    /// The server said `Connection: close`: this connection takes no more requests.
    private var closing = false

    init(load: LiveLoad) {
        self.load = load
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func channelActive(context: ChannelHandlerContext) {
        self.load.connectionIdle(self)
        context.fireChannelActive()
    }

    func post(event: Int, head: HTTPRequestHead, body: ByteBuffer) {
        guard let context = self.context else {
            self.load.connectionLost(self, holding: event)
            return
        }
        self.inFlight = event
        var head = head
        head.headers.replaceOrAdd(name: "content-length", value: "\(body.readableBytes)")
        context.write(self.wrapOutboundOut(.head(head)), promise: nil)
        context.write(self.wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            self.status = head.status.code
            self.closing = !head.isKeepAlive
        case .body:
            break
        case .end:
            self.inFlight = nil
            self.load.answered(ok: (200..<300).contains(self.status))
            if !self.closing { self.load.connectionIdle(self) }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        let event = self.inFlight
        self.inFlight = nil
        self.context = nil
        self.load.connectionLost(self, holding: event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// One user's event stream: sends the GET, then scans the body for the generator's events.
final class StreamHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private let load: LiveLoad
    private let user: Int
    private var scanner = SSEEventScanner()
    private var report: StreamReport

    init(load: LiveLoad, user: Int) {
        self.load = load
        self.user = user
        self.report = StreamReport(load: load, user: user)
    }

    func channelActive(context: ChannelHandlerContext) {
        context.write(self.wrapOutboundOut(.head(self.load.target.streamHead(user: self.user))), promise: nil)
        context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            guard head.status == .ok else {
                self.load.streamFailed("HTTP \(head.status.code) for user \(self.user)")
                context.close(promise: nil)
                return
            }
            if self.load.target.readyOnResponseHead { self.report.ready() }
        case .body(let buffer):
            let now = DispatchTime.now().uptimeNanoseconds
            let items = buffer.withUnsafeReadableBytes { self.scanner.feed($0) }
            for item in items {
                switch item {
                case .event(let stamp, let number):
                    self.load.arrived(event: number, on: self.user, stampNs: stamp, nowNs: now)
                case .ready:
                    self.report.ready()
                case .overflow:
                    self.report.sawOverflow = true
                }
            }
        case .end:
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.report.ended()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// What a stream tells the load, whatever its transport: ready once, and its end (with whether the server said it
/// fell behind).
struct StreamReport {
    let load: LiveLoad
    let user: Int
    private(set) var isReady = false
    var sawOverflow = false

    init(load: LiveLoad, user: Int) {
        self.load = load
        self.user = user
    }

    mutating func ready() {
        guard !self.isReady else { return }
        self.isReady = true
        self.load.streamReady()
    }

    func ended() {
        if !self.isReady { self.load.streamFailed("closed before it was ready (user \(self.user))") }
        self.load.streamEnded(overflow: self.sawOverflow)
    }
}
