import Logging
import NIOCore
import NIOExtras
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import NotifyCore
import ServiceLifecycle

/// The Plexer's listener: WebSocket upgrades at `/ws` with subprotocol `notify.v1`, every socket served by a
/// ``PlexerConnection`` on its event loop.
///
/// Built on SwiftNIO's WebSocket codec directly rather than hummingbird-websocket: that framework runs each socket
/// as a task that iterates its frames, and a task keeps its frame memory at its deepest for as long as it lives
/// (heaptrack put 24 of the SSE stream's 37 KiB per connection there, the same pattern). Here a socket is its
/// pipeline and one handler; tasks exist only while a request waits.
///
/// On graceful shutdown it stops accepting, tells every client to reconnect elsewhere (`sys`/`reconnect` with a
/// jittered `retry_ms`, then close 1001), and returns once every socket closed (each within its close grace).
public final class PlexerServer: Service, Sendable {
    public let services: PlexerServices
    public let host: String
    public let port: Int
    private let group: any EventLoopGroup
    private let onListening: @Sendable (Int) -> Void

    /// The one path the Plexer serves.
    public static let path = "/ws"

    public init(
        services: PlexerServices, host: String, port: Int,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        onListening: @escaping @Sendable (_ port: Int) -> Void = { _ in }
    ) {
        self.services = services
        self.host = host
        self.port = port
        self.group = group
        self.onListening = onListening
    }

    public func run() async throws {
        do {
            try await self.serve()
        } catch {
            try? await self.services.upstreams.shutdown()
            throw error
        }
        try await self.services.upstreams.shutdown()
    }

    private func serve() async throws {
        let quiesce = ServerQuiescingHelper(group: self.group)
        let services = self.services
        let server = try await ServerBootstrap(group: self.group)
            .serverChannelOption(.backlog, value: 4_096)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(quiesce.makeServerChannelHandler(channel: channel))
                }
            }
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try Self.configure(channel, services: services) }
            }
            .bind(host: self.host, port: self.port).get()
        self.onListening(server.localAddress?.port ?? self.port)
        services.logger.info(
            "plexer listening", metadata: ["net.port": "\(server.localAddress?.port ?? self.port)"])
        // Until the process stops (or this service is cancelled), then drain.
        try? await gracefulShutdown()
        let drained = self.group.next().makePromise(of: Void.self)
        quiesce.initiateShutdown(promise: drained)
        try await drained.futureResult.get()
    }

    /// HTTP/1 until the upgrade; then the WebSocket codec, the fragment aggregator and the connection.
    private static func configure(_ channel: any Channel, services: PlexerServices) throws {
        let limit = services.configuration.maxMessageBytes
        let upgrader = NIOWebSocketServerUpgrader(
            maxFrameSize: limit,
            shouldUpgrade: { channel, head in
                guard let target = HandshakeTarget(head), target.isAccepted else {
                    return channel.eventLoop.makeSucceededFuture(nil)
                }
                return channel.eventLoop.makeSucceededFuture(
                    HTTPHeaders([("Sec-WebSocket-Protocol", PlexerConnection.subprotocol)]))
            },
            upgradePipelineHandler: { channel, head in
                channel.eventLoop.makeCompletedFuture {
                    let target = HandshakeTarget(head)
                    try channel.pipeline.syncOperations.addHandlers([
                        FrameCheck(fromClient: true),
                        // A message in at most 16 fragments: each buffered fragment costs its bookkeeping too.
                        NIOWebSocketFrameAggregator(
                            minNonFinalFragmentSize: 1, maxAccumulatedFrameCount: 16,
                            maxAccumulatedFrameSize: limit),
                        PlexerConnection(
                            services: services, handshakeToken: target?.token,
                            badCredential: target?.badCredential),
                    ])
                }
            })
        try channel.pipeline.syncOperations.configureHTTPServerPipeline(
            withServerUpgrade: (
                upgraders: [upgrader],
                completionHandler: { context in
                    if let refusal = try? context.pipeline.syncOperations.context(handlerType: HandshakeRefusal.self) {
                        context.pipeline.syncOperations.removeHandler(context: refusal, promise: nil)
                    }
                }
            ))
        try channel.pipeline.syncOperations.addHandler(
            HandshakeRefusal(timeout: .milliseconds(Int64(services.configuration.authTimeoutMs))))
    }
}
