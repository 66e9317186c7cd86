import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket

/// The benchmark's WebSocket client connections: the handshake `head` (the upgrade handler adds the WebSocket
/// headers), then `handler` on the upgraded channel. The server's first frame may come in the same read as its
/// 101: it is forwarded, not dropped.
enum WebSocketClientBootstrap {
    static func make<Handler: ChannelHandler>(
        _ group: any EventLoopGroup, head: HTTPRequestHead, handler: @escaping @Sendable () -> Handler
    ) -> ClientBootstrap {
        ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let upgrader = NIOWebSocketClientUpgrader(
                        maxFrameSize: 1 << 20,
                        upgradePipelineHandler: { channel, _ in
                            channel.eventLoop.makeCompletedFuture {
                                try channel.pipeline.syncOperations.addHandler(handler())
                            }
                        })
                    try channel.pipeline.syncOperations.addHTTPClientHandlers(
                        leftOverBytesStrategy: .forwardBytes,
                        withClientUpgrade: (
                            upgraders: [upgrader],
                            completionHandler: { context in
                                if let sender = try? context.pipeline.syncOperations.context(
                                    handlerType: WebSocketHandshakeSender.self)
                                {
                                    context.pipeline.syncOperations.removeHandler(context: sender, promise: nil)
                                }
                            }
                        ))
                    try channel.pipeline.syncOperations.addHandler(WebSocketHandshakeSender(head: head))
                }
            }
    }
}
