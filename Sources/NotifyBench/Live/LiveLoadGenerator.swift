import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket

#if canImport(Glibc)
    import Glibc
#endif

/// The live benchmark's load generator, run as a process of its own (`notify bench live-load`) on one event loop
/// so that its CPU is its own and reported: it opens the streams, posts events to random connected users at a
/// fixed rate over keep-alive connections, and measures each event from just before its POST to its parsed
/// arrival. Progress marks go to stdout as lines (`mark ready`, `mark sending`, `mark sent`, `mark idle`) so the
/// benchmark can sample the server's CPU and memory at those instants; the last line is `report <json>`.
public struct LiveLoadGenerator: Sendable {
    public struct Options: Sendable {
        public var target: String
        public var host = "127.0.0.1"
        public var port: Int
        /// `sse`, or `websocket` (to `streamPort`).
        public var transport = "sse"
        public var streamPort: Int?
        public var streams: Int
        public var ratePerSecond: Int
        public var seconds: Double
        public var postConnections = 32
        public var withPush = false
        public var userPrefix = "lu"
        public var apiKey = ""
        public var tokens: [String] = []
        /// How long to wait for the last events after the last POST.
        public var drainSeconds = 5.0
        /// One event per stream (user i gets event i), then `mark idle` and wait for a line on stdin before
        /// closing: the benchmark reads the server's idle memory per open stream meanwhile.
        public var probeMemory = false

        public init(target: String, port: Int, streams: Int, ratePerSecond: Int, seconds: Double) {
            self.target = target
            self.port = port
            self.streams = streams
            self.ratePerSecond = ratePerSecond
            self.seconds = seconds
        }
    }

    let options: Options

    public init(options: Options) {
        self.options = options
    }

    public func run() async throws -> LiveLoadReport {
        guard let kind = LiveTarget.Kind(rawValue: self.options.target) else {
            throw BenchError("unknown target \(self.options.target): notify or nchan")
        }
        guard let transport = LiveTarget.Transport(rawValue: self.options.transport) else {
            throw BenchError("unknown transport \(self.options.transport): sse or websocket")
        }
        let target = LiveTarget(
            kind: kind, host: self.options.host, port: self.options.port, transport: transport,
            streamPort: self.options.streamPort ?? self.options.port, userPrefix: self.options.userPrefix,
            apiKey: self.options.apiKey, tokens: self.options.tokens, withPush: self.options.withPush)
        let streams = self.options.streams
        let planned =
            self.options.probeMemory ? streams : Int(Double(self.options.ratePerSecond) * self.options.seconds)
        var random = SystemRandomNumberGenerator()
        let targets: [Int32] =
            self.options.probeMemory
            ? (0..<streams).map { Int32($0) }
            : (0..<planned).map { _ in Int32.random(in: 0..<Int32(streams), using: &random) }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let load = LiveLoad(loop: loop, streams: streams, targets: targets, target: target)
        let cpuBefore = Self.cpuSeconds()
        var channels: [any Channel] = []
        var readySeconds = 0.0
        do {
            Self.mark("connecting")
            let connectStart = DispatchTime.now().uptimeNanoseconds
            // Connect in waves: a listen backlog takes a few hundred at once.
            for wave in stride(from: 0, to: streams, by: 250) {
                let futures = (wave..<min(streams, wave + 250)).map { user in
                    switch transport {
                    case .sse:
                        self.bootstrap(group) { StreamHandler(load: load, user: user) }
                            .connect(host: self.options.host, port: target.streamPort)
                    case .websocket:
                        Self.webSocketBootstrap(group, load: load, user: user)
                            .connect(host: self.options.host, port: target.streamPort)
                    }
                }
                for future in futures { channels.append(try await future.get()) }
            }
            try await Self.within(seconds: 120, load.ready, on: loop, what: "the streams to be ready")
            readySeconds = Double(DispatchTime.now().uptimeNanoseconds - connectStart) / 1e9
            Self.mark("ready")
            let publisher = self.bootstrap(group) { PublishHandler(load: load) }
            let (host, port) = (self.options.host, self.options.port)
            try await loop.submit {
                // A server that closes a keep-alive connection (nginx after `keepalive_requests`) gets a new one.
                load.replacePublisher = { publisher.connect(host: host, port: port).whenFailure { _ in } }
            }.get()
            for _ in 0..<self.options.postConnections {
                channels.append(try await publisher.connect(host: host, port: port).get())
            }
            Self.mark("sending")
            let start = DispatchTime.now().uptimeNanoseconds
            let rate = Double(self.options.ratePerSecond)
            let pacer = loop.scheduleRepeatedTask(initialDelay: .zero, delay: .milliseconds(1)) { _ in
                let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                load.schedule(upTo: Int(elapsed * rate) + 1)
            }
            try await Self.within(
                seconds: self.options.seconds * 3 + 60, load.answeredAll, on: loop, what: "the server's answers")
            pacer.cancel()
            Self.mark("sent")
            try? await Self.within(seconds: self.options.drainSeconds, load.receivedAll, on: loop, what: "arrivals")
            if self.options.probeMemory {
                Self.mark("idle")
                _ = readLine()
            }
        } catch {
            for channel in channels { channel.close(promise: nil) }
            try? await group.shutdownGracefully()
            throw error
        }
        let report = try await loop.submit {
            load.finishing = true
            return Self.report(load, cpuSeconds: Self.cpuSeconds() - cpuBefore, readySeconds: readySeconds)
        }.get()
        for channel in channels { try? await channel.close() }
        try await group.shutdownGracefully()
        return report
    }

    /// A stream over a WebSocket: the handshake, then ``WebSocketStreamHandler`` on the upgraded channel.
    private static func webSocketBootstrap(
        _ group: MultiThreadedEventLoopGroup, load: LiveLoad, user: Int
    ) -> ClientBootstrap {
        let target = load.target
        let (uri, subprotocol) = target.webSocketTarget(user: user)
        var headers: HTTPHeaders = ["host": "\(target.host):\(target.streamPort)"]
        if let subprotocol { headers.add(name: "sec-websocket-protocol", value: subprotocol) }
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: uri, headers: headers)
        return WebSocketClientBootstrap.make(group, head: head) { WebSocketStreamHandler(load: load, user: user) }
    }

    private func bootstrap<Handler: ChannelInboundHandler>(
        _ group: MultiThreadedEventLoopGroup, handler: @escaping @Sendable () -> Handler
    ) -> ClientBootstrap where Handler.InboundIn == HTTPClientResponsePart {
        ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(handler())
                }
            }
    }

    private static func report(_ load: LiveLoad, cpuSeconds: Double, readySeconds: Double) -> LiveLoadReport {
        let sorted = load.latenciesNs.sorted()
        func quantile(_ q: Double) -> Double {
            guard !sorted.isEmpty else { return 0 }
            let index = min(sorted.count - 1, Int((Double(sorted.count) * q).rounded(.up)) - 1)
            return Double(sorted[max(0, index)]) / 1e6
        }
        let sending = Double(load.lastPostNs &- load.firstPostNs) / 1e9
        return LiveLoadReport(
            planned: load.planned, accepted: load.accepted, postErrors: load.postErrors, received: load.received,
            duplicates: load.duplicates, misrouted: load.misrouted, overflows: load.overflows,
            streamsLost: load.streamsLost,
            postedPerSecond: sending > 0 ? Double(max(0, load.scheduled - 1)) / sending : 0,
            p50Ms: quantile(0.5), p99Ms: quantile(0.99), maxMs: sorted.last.map { Double($0) / 1e6 } ?? 0,
            generatorCPUSeconds: cpuSeconds, sendingSeconds: sending, readySeconds: readySeconds)
    }

    /// Waits for `future`, failing after `seconds`.
    private static func within(
        seconds: Double, _ future: EventLoopFuture<Void>, on loop: any EventLoop, what: String
    ) async throws {
        let timeout = loop.scheduleTask(in: .milliseconds(Int64(seconds * 1_000))) {}
        let promise = loop.makePromise(of: Void.self)
        future.cascade(to: promise)
        timeout.futureResult.whenSuccess {
            promise.fail(BenchError("gave up waiting \(Int(seconds)) s for \(what)"))
        }
        defer { timeout.cancel() }
        try await promise.futureResult.get()
    }

    static func mark(_ name: String) {
        FileHandle.standardOutput.write(Data("mark \(name)\n".utf8))
    }

    static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6 + Double(usage.ru_stime.tv_sec)
            + Double(usage.ru_stime.tv_usec) / 1e6
    }
}
