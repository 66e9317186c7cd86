import Foundation
import Logging
import Metrics
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOWebSocket
import NotifyCore
import Synchronization

/// Opens the WebSocket channels' upstream sockets: on the client's own event loop (so relaying never changes
/// threads), with the user's identity on the handshake, TLS for `wss`, within the route's timeout, and at most
/// the route's `maxInFlight` sockets to one upstream at once from this process.
public final class UpstreamSockets: Sendable {
    /// Sockets open (or opening) per channel.
    private let open = RouteSlots()
    /// One TLS context for every `wss` route, made on first use.
    private let tls = Mutex<NIOSSLContext?>(nil)
    private let tlsConfiguration: TLSConfiguration

    let failures: UpstreamFailures

    /// With a `wss` route among `routes`, the TLS context is made now (it reads the system's trust store from disk,
    /// which the first connection's event loop should not wait for).
    init(routes: some Sequence<UpstreamRoute>, caFile: String? = nil, logger: Logger) {
        self.failures = UpstreamFailures(logger: logger)
        self.tlsConfiguration = TrustedAuthorities.clientTLS(caFile: caFile)
        if routes.contains(where: { $0.url.scheme == "wss" }) {
            do {
                try self.tls.withLock { $0 = try NIOSSLContext(configuration: self.tlsConfiguration) }
            } catch {
                logger.error("no TLS context for wss routes", metadata: ["error": "\(error)"])
            }
        }
    }

    /// The handshake's answer was not `101 Switching Protocols`.
    struct Refused: Error {}
    /// No answer within the route's timeout.
    struct TimedOut: Error {}

    /// Connects and completes the handshake; `socket` (made on `loop`) is the new connection's last handler. A
    /// refusal, a failure, or no handshake within the route's timeout fails the future with `upstream_unavailable`.
    func connect(
        _ route: UpstreamRoute, headers identity: [(name: String, value: String)], socket: UpstreamSocket,
        on loop: any EventLoop
    ) -> EventLoopFuture<Void> {
        guard self.open.take(route) else {
            self.failures.record(route.channel, .limit)
            return loop.makeFailedFuture(
                PlexerFailure(
                    "upstream_unavailable",
                    "channel \(route.channel) has \(route.maxInFlight) sockets open; retry later"))
        }
        let gauge = Meter(label: "notify_plexer_upstream_sockets", dimensions: [("route", route.channel)])
        gauge.increment()
        // Every path below completes on `loop`.
        let released = NIOLoopBoundBox(false, eventLoop: loop)
        let release: @Sendable () -> Void = {
            guard !released.value else { return }
            released.value = true
            self.open.give(route.channel)
            gauge.decrement()
        }
        socket.releasePlace = release
        let upgraded = loop.makePromise(of: Void.self)
        do {
            let target = try Self.target(route)
            let tls = try route.url.scheme == "wss" ? self.tlsContext() : nil
            var headers = HTTPHeaders(identity.map { ($0.name, $0.value) })
            headers.add(name: "Host", value: target.hostHeader)
            let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: target.path, headers: headers)
            let handler = NIOLoopBound(socket, eventLoop: loop)
            let limit = route.maxResponseBytes
            let bootstrap = ClientBootstrap(group: loop)
                .connectTimeout(.milliseconds(Int64(route.timeoutMs)))
                // One read per wake-up: what arrives after the client's socket stopped taking writes (and this one
                // stopped reading) stays small. An idle socket keeps a small read buffer, as client sockets do.
                .channelOption(.maxMessagesPerRead, value: 1)
                .channelOption(
                    .recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 1_024, maximum: 65_536)
                )
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let tls {
                            try channel.pipeline.syncOperations.addHandler(
                                NIOSSLClientHandler(context: tls, serverHostname: target.serverName))
                        }
                        let upgrader = NIOTypedWebSocketClientUpgrader<Void>(
                            maxFrameSize: limit,
                            upgradePipelineHandler: { channel, _ in
                                channel.eventLoop.makeCompletedFuture {
                                    try channel.pipeline.syncOperations.addHandlers(
                                        FrameCheck(fromClient: false),
                                        NIOWebSocketFrameAggregator(
                                            minNonFinalFragmentSize: 1, maxAccumulatedFrameCount: 1_024,
                                            maxAccumulatedFrameSize: limit),
                                        handler.value)
                                }
                            })
                        var configuration = NIOUpgradableHTTPClientPipelineConfiguration(
                            upgradeConfiguration: NIOTypedHTTPClientUpgradeConfiguration(
                                upgradeRequestHead: head, upgraders: [upgrader],
                                notUpgradingCompletionHandler: { channel in
                                    channel.eventLoop.makeFailedFuture(Refused())
                                }))
                        // Frames the upstream sends right behind its 101 arrive in the same read.
                        configuration.leftOverBytesStrategy = .forwardBytes
                        try channel.pipeline.syncOperations.configureUpgradableHTTPClientPipeline(
                            configuration: configuration
                        ).cascade(to: upgraded)
                    }
                }
            let timeout = loop.scheduleTask(in: .milliseconds(Int64(route.timeoutMs))) {
                upgraded.fail(TimedOut())
            }
            // An address is connected to as is: resolving it (getaddrinfo, on a thread pool) costs a hop.
            let connecting =
                if let address = try? SocketAddress(ipAddress: target.host, port: target.port) {
                    bootstrap.connect(to: address)
                } else {
                    bootstrap.connect(host: target.host, port: target.port)
                }
            connecting.whenComplete { result in
                switch result {
                case .success(let channel):
                    channel.closeFuture.whenComplete { _ in release() }
                    handler.value.connected(channel)
                    upgraded.futureResult.whenComplete { result in
                        timeout.cancel()
                        if case .failure = result { channel.close(promise: nil) }
                    }
                case .failure(let error):
                    timeout.cancel()
                    release()
                    upgraded.fail(error)
                }
            }
        } catch {
            release()
            upgraded.fail(error)
        }
        return upgraded.futureResult.flatMapErrorThrowing { error in
            let failure = Self.failure(error, route: route)
            self.failures.record(
                route.channel, failure.message.contains("did not answer") ? .timeout : .unreachable, error: error)
            throw failure
        }
    }

    private static func failure(_ error: any Error, route: UpstreamRoute) -> PlexerFailure {
        if let failure = error as? PlexerFailure { return failure }
        if error is Refused {
            return PlexerFailure("upstream_unavailable", "channel \(route.channel) refused the WebSocket handshake")
        }
        var timedOut = error is TimedOut
        if case ChannelError.connectTimeout = error { timedOut = true }
        guard !timedOut else {
            return PlexerFailure(
                "upstream_unavailable", "channel \(route.channel) did not answer within \(route.timeoutMs) ms")
        }
        return PlexerFailure("upstream_unavailable", "channel \(route.channel) is unreachable")
    }

    private struct Target {
        var host: String
        var port: Int
        /// The path and query of the handshake.
        var path: String
        var hostHeader: String
        /// The TLS server name: the host, unless it is an address.
        var serverName: String?
    }

    private static func target(_ route: UpstreamRoute) throws -> Target {
        guard var host = route.url.host, !host.isEmpty else { throw Refused() }
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        let secure = route.url.scheme == "wss"
        let port = route.url.port ?? (secure ? 443 : 80)
        let path = route.handshakeTarget
        let isAddress = (try? SocketAddress(ipAddress: host, port: 0)) != nil
        let bracketed = host.contains(":") ? "[\(host)]" : host
        return Target(
            host: host, port: port, path: path,
            hostHeader: route.url.port.map { "\(bracketed):\($0)" } ?? bracketed,
            serverName: isAddress ? nil : host)
    }

    private func tlsContext() throws -> NIOSSLContext {
        try self.tls.withLock { context in
            if let context { return context }
            let made = try NIOSSLContext(configuration: self.tlsConfiguration)
            context = made
            return made
        }
    }
}
