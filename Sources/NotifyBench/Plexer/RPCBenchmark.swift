import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import NotifyCore

/// `notify bench plexer`'s RPC figure: one request at a time per connection, through the Plexer's HTTP channel to
/// a local upstream, against the same request sent to that upstream directly over keep-alive HTTP/1.1, with the
/// same number of connections, in the same run, alternating which goes first. The difference is what the Plexer
/// adds to a chat-API call (WebSocket framing, the frame checks, the signed identity, the pooled upstream call).
public struct RPCBenchmark: Sendable {
    public struct Options: Sendable {
        public var connections = 64
        public var seconds = 5.0
        public var runs = 3
        public init() {}
    }

    /// One run of one path.
    public struct Run: Sendable {
        public var path: String
        public var requestsPerSecond: Double
        public var p50Ms: Double
        public var p99Ms: Double
        public var errors: Int
        /// Cores the Notify process used meanwhile (0 for the direct path).
        public var plexerCores: Double
    }

    let executable: String
    let options: Options

    public init(executable: String, options: Options) {
        self.executable = executable
        self.options = options
    }

    public func run(progress: @escaping @Sendable (String) -> Void) async throws -> [Run] {
        let upstream = try await RPCUpstream.start()
        let secret = Base64URL.random(byteCount: 32)
        let server = try await LiveServer.startNotify(
            executable: self.executable, plexer: true,
            extra: [
                "NOTIFY_PLEXER_ROUTES": "rpc", "NOTIFY_PLEXER_ROUTE_RPC_URL": "http://127.0.0.1:\(upstream.port)",
                "NOTIFY_PLEXER_ROUTE_RPC_SECRET": secret, "NOTIFY_PLEXER_ROUTE_RPC_ALLOWED_PREFIXES": "/rpc",
                // The per-socket request limit (50/s by default) would be what is measured otherwise.
                "NOTIFY_PLEXER_REQUESTS_PER_SECOND": "1000000", "NOTIFY_PLEXER_REQUEST_BURST": "1000000",
            ])
        defer { server.stop() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var runs: [Run] = []
        do {
            let users = (0..<self.options.connections).map { "rpc\($0)" }
            let tokens = try await DevTokenMinter.tokens(for: users, secret: server.tokenSecret)
            var order = ["direct", "plexer"]
            for _ in 0..<self.options.runs {
                for path in order {
                    let run = try await self.measure(
                        path, group: group, upstreamPort: upstream.port, server: server, tokens: tokens)
                    progress(Self.describe(run))
                    runs.append(run)
                }
                order.reverse()
            }
        } catch {
            try? await group.shutdownGracefully()
            await upstream.stop()
            throw error
        }
        try await group.shutdownGracefully()
        await upstream.stop()
        return runs
    }

    static func describe(_ run: Run) -> String {
        func f(_ value: Double) -> String { String(format: "%.3f", value) }
        return "  rpc \(run.path): \(Int(run.requestsPerSecond)) requests/s, p50 \(f(run.p50Ms)) ms, "
            + "p99 \(f(run.p99Ms)) ms, errors \(run.errors)"
            + (run.path == "plexer" ? "; Notify process CPU \(Int(run.plexerCores * 100)) %" : "")
    }

    /// Medians per path, and what the Plexer adds.
    public static func summary(_ runs: [Run]) -> [String] {
        func f(_ value: Double) -> String { String(format: "%.3f", value) }
        var lines: [String] = []
        var cells: [String: (rate: Double, p50: Double, p99: Double)] = [:]
        for path in ["direct", "plexer"] {
            let these = runs.filter { $0.path == path }
            guard !these.isEmpty else { continue }
            let cell = (
                median(these.map(\.requestsPerSecond)), median(these.map(\.p50Ms)), median(these.map(\.p99Ms))
            )
            cells[path] = cell
            lines.append(
                "rpc \(path) (median of \(these.count)): \(Int(cell.0)) requests/s, p50 \(f(cell.1)) ms, "
                    + "p99 \(f(cell.2)) ms, errors \(these.map(\.errors).reduce(0, +))")
        }
        if let direct = cells["direct"], let plexer = cells["plexer"] {
            lines.append(
                "rpc through the Plexer vs direct: +\(f(plexer.p50 - direct.p50)) ms at p50, "
                    + "+\(f(plexer.p99 - direct.p99)) ms at p99, "
                    + String(format: "%.2f", plexer.rate / max(1, direct.rate)) + "× the throughput")
        }
        return lines
    }

    private func measure(
        _ path: String, group: MultiThreadedEventLoopGroup, upstreamPort: Int, server: LiveServer, tokens: [String]
    ) async throws -> Run {
        let loop = group.next()
        let load = RPCLoad(loop: loop, connections: self.options.connections)
        var channels: [any Channel] = []
        defer { for channel in channels { channel.close(promise: nil) } }
        for index in 0..<self.options.connections {
            let bootstrap =
                path == "direct"
                ? Self.directBootstrap(loop, load: load, port: upstreamPort)
                : Self.webSocketBootstrap(loop, load: load, port: server.webSocketPort, token: tokens[index])
            channels.append(
                try await bootstrap.connect(
                    host: "127.0.0.1", port: path == "direct" ? upstreamPort : server.webSocketPort
                )
                .get())
        }
        try await load.ready.get()
        let before = ProcessSample.take(server.pids)
        let start = DispatchTime.now().uptimeNanoseconds
        try await loop.submit { load.begin(seconds: self.options.seconds) }.get()
        try await load.done.get()
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let after = ProcessSample.take(server.pids)
        let (latencies, errors) = try await loop.submit { (load.latenciesNs.sorted(), load.errors) }.get()
        func quantile(_ q: Double) -> Double {
            guard !latencies.isEmpty else { return 0 }
            return Double(latencies[min(latencies.count - 1, Int(Double(latencies.count) * q))]) / 1e6
        }
        return Run(
            path: path, requestsPerSecond: Double(latencies.count) / elapsed, p50Ms: quantile(0.5),
            p99Ms: quantile(0.99), errors: errors, plexerCores: path == "direct" ? 0 : after.cores(since: before))
    }

    private static func directBootstrap(_ loop: any EventLoop, load: RPCLoad, port: Int) -> ClientBootstrap {
        ClientBootstrap(group: loop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(DirectRPCHandler(load: load, port: port))
                }
            }
    }

    private static func webSocketBootstrap(_ loop: any EventLoop, load: RPCLoad, port: Int, token: String)
        -> ClientBootstrap
    {
        let head = HTTPRequestHead(
            version: .http1_1, method: .GET, uri: "/ws?access_token=\(token)",
            headers: ["host": "127.0.0.1:\(port)", "sec-websocket-protocol": "notify.v1"])
        return WebSocketClientBootstrap.make(loop, head: head) { PlexerRPCHandler(load: load) }
    }
}
