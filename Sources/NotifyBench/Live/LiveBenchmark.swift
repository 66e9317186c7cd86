import Foundation
import NotifyCore

/// `notify bench live`: S open SSE streams, events posted one per HTTP POST to random connected users at a fixed
/// rate, publish→receive latency; Notify (`notify api` in a process of its own) side by side with nchan on nginx,
/// both storing messages in a Redis of their own, driven by the same load generator (a process of its own) in
/// the same run, alternating which goes first.
public struct LiveBenchmark: Sendable {
    public struct Options: Sendable {
        /// Streams × events per second, each run for `seconds`.
        public var matrix: [(streams: Int, rate: Int)] = [(1_000, 1_000), (5_000, 1_000), (5_000, 5_000)]
        public var seconds = 10.0
        public var runs = 2
        /// The search for the highest rate each sustains (p99 < 10 ms, nothing lost) at `ceilingStreams`.
        public var ceilingRates: [Int] = [6_000, 8_000, 10_000, 12_000]
        public var ceilingStreams = 5_000
        /// Streams held open to measure idle memory per stream (0: skipped). Each side of the loopback needs a
        /// file per stream, so the open-file limit bounds it (20,000 on a machine without CAP_SYS_RESOURCE).
        public var memoryStreams = 18_000
        /// Streams that connect at once (in waves of 250, as fast as the server takes them) for the reconnect storm:
        /// the time until all are ready (0: skipped). The open-file limit bounds it like `memoryStreams`.
        public var stormStreams = 0
        /// Each Notify event also schedules the default push (inbox + push job).
        public var withPush = false
        public var peers: [String] = ["notify", "nchan"]
        /// Streams over Server-Sent Events, or over WebSockets (Notify's Plexer, nchan's websocket subscriber).
        public var webSocket = false
        public var postConnections = 32
        public init() {}
    }

    /// One run of one server at one load.
    public struct Run: Sendable {
        public var server: String
        public var streams: Int
        public var rate: Int
        public var load: LiveLoadReport
        /// Cores used while sending (1 = one core busy): the server, its Redis, the generator.
        public var serverCores: Double
        public var redisCores: Double
        public var generatorCores: Double
        /// Server CPU per accepted event, in microseconds.
        public var serverMicrosecondsPerEvent: Double
        /// Cores used while the streams connected, until all were ready: the server, the generator.
        public var connectServerCores: Double
        public var connectGeneratorCores: Double

        /// Server CPU per stream made ready, in microseconds.
        public var serverMicrosecondsPerSocket: Double {
            self.connectServerCores * self.load.readySeconds / Double(max(1, self.streams)) * 1e6
        }

        /// Delivered everything once, to the right stream, at the asked rate (within 5 %).
        public var clean: Bool {
            self.load.lost == 0 && self.load.duplicates == 0 && self.load.misrouted == 0 && self.load.postErrors == 0
                && self.load.overflows == 0 && self.load.streamsLost == 0
                && self.load.postedPerSecond >= Double(self.rate) * 0.95
        }
    }

    /// Idle memory with many open streams, each after one event.
    public struct Memory: Sendable {
        public var server: String
        public var streams: Int
        public var processBytesPerStream: Double
        public var redisBytesPerStream: Double
        public var received: Int
    }

    let executable: String
    let options: Options

    /// - Parameter executable: the `notify` binary (for `notify api` and the generator).
    public init(executable: String, options: Options) {
        self.executable = executable
        self.options = options
    }

    /// Everything one benchmark measured.
    public struct Outcome: Sendable {
        public var runs: [Run] = []
        /// One reconnect storm per server (``Options/stormStreams``).
        public var storms: [Run] = []
        public var memory: [Memory] = []
    }

    public func run(progress: @escaping @Sendable (String) -> Void) async throws -> Outcome {
        OpenFileLimit.raise(to: 200_000)  // children inherit it: tens of thousands of streams on each side
        var servers: [LiveServer] = []
        defer { for server in servers { server.stop() } }
        for peer in self.options.peers {
            servers.append(try await self.start(peer))
        }
        var runs: [Run] = []
        var order = servers
        let ceiling = self.options.ceilingRates.sorted().map { (streams: self.options.ceilingStreams, rate: $0) }
        // The search for the highest sustained rate stops, per server, at the first rate it did not sustain.
        var pastCeiling: Set<String> = []
        for (index, (streams, rate)) in (self.options.matrix + ceiling).enumerated() {
            let isCeiling = index >= self.options.matrix.count
            for _ in 0..<self.options.runs {
                for server in order where !(isCeiling && pastCeiling.contains(server.name)) {
                    do {
                        let run = try await self.measure(server, streams: streams, rate: rate)
                        progress(Self.describe(run))
                        runs.append(run)
                    } catch {
                        // A load one server cannot take must not cost the rest of the matrix.
                        progress("  \(server.name) \(streams) streams × \(rate)/s: FAILED: \(error)")
                    }
                }
                order.reverse()  // alternate which goes first
            }
            if isCeiling {
                for server in servers {
                    let these = runs.filter { $0.server == server.name && $0.streams == streams && $0.rate == rate }
                    if these.isEmpty || !these.allSatisfy(Self.sustained) { pastCeiling.insert(server.name) }
                }
            }
        }
        var storms: [Run] = []
        if self.options.stormStreams > 0 {
            for server in servers {
                do {
                    let storm = try await self.measure(server, streams: self.options.stormStreams, rate: 100)
                    progress(Self.describeStorm(storm))
                    storms.append(storm)
                } catch {
                    progress("  storm \(server.name), \(self.options.stormStreams) streams: FAILED: \(error)")
                }
            }
        }
        var memory: [Memory] = []
        if self.options.memoryStreams > 0 {
            // Each probe on a fresh server: memory a loaded run freed would otherwise absorb part of the streams'.
            for server in servers { server.stop() }
            servers = []
            for peer in self.options.peers {
                let probe: Memory
                do {
                    let server = try await self.start(peer)
                    defer { server.stop() }
                    probe = try await self.probeMemory(server, streams: self.options.memoryStreams)
                } catch {
                    progress("  memory \(peer), \(self.options.memoryStreams) streams: FAILED: \(error)")
                    continue
                }
                progress(
                    "  memory \(probe.server): \(probe.streams) idle streams: "
                        + "\(Int(probe.processBytesPerStream / 1_024 * 10) / 10) KiB per stream in the process, "
                        + "\(Int(probe.redisBytesPerStream / 1_024 * 10) / 10) KiB in Redis (\(probe.received) received)"
                )
                memory.append(probe)
            }
        }
        return Outcome(runs: runs, storms: storms, memory: memory)
    }

    private func start(_ peer: String) async throws -> LiveServer {
        switch peer {
        case "notify": try await LiveServer.startNotify(executable: self.executable, plexer: self.options.webSocket)
        case "nchan": try await LiveServer.startNchan()
        default: throw BenchError("unknown peer \(peer): notify or nchan")
        }
    }

    /// Everything delivered once, at the asked rate, with p99 under 10 ms.
    static func sustained(_ run: Run) -> Bool { run.clean && run.load.p99Ms < 10 }

    static func describe(_ run: Run) -> String {
        func f(_ value: Double) -> String { String(format: "%.2f", value) }
        let load = run.load
        return "  \(run.server) \(run.streams) streams × \(run.rate)/s: reached \(Int(load.postedPerSecond))/s, "
            + "p50 \(f(load.p50Ms)) ms p99 \(f(load.p99Ms)) ms max \(f(load.maxMs)) ms, "
            + "received \(load.received)/\(load.accepted) (lost \(load.lost), dup \(load.duplicates), "
            + "errors \(load.postErrors), overflows \(load.overflows)); CPU: server \(Int(run.serverCores * 100)) %, "
            + "its Redis \(Int(run.redisCores * 100)) %, generator \(Int(run.generatorCores * 100)) %; "
            + "\(Int(run.serverMicrosecondsPerEvent)) µs server CPU per event"
    }

    static func describeStorm(_ run: Run) -> String {
        "  storm \(run.server): \(run.streams) streams connected at once, all ready after "
            + String(format: "%.2f", run.load.readySeconds)
            + " s (\(Int(Double(run.streams) / max(0.001, run.load.readySeconds)))/s); "
            + "CPU meanwhile: server \(Int(run.connectServerCores * 100)) % "
            + "(\(Int(run.serverMicrosecondsPerSocket)) µs per socket), generator \(Int(run.connectGeneratorCores * 100)) %"
    }

    private func generator(_ server: LiveServer, streams: Int, rate: Int, probe: Bool) throws -> ChildProcess {
        var arguments = [
            "bench", "live-load", "--target", server.name, "--port", "\(server.port)", "--streams", "\(streams)",
            "--rate", "\(rate)", "--seconds", "\(self.options.seconds)",
            "--post-connections", "\(self.options.postConnections)",
            "--user-prefix", "u\(UInt32.random(in: 0...UInt32.max))x",
        ]
        if probe { arguments.append("--probe-memory") }
        if self.options.webSocket {
            arguments += ["--transport", "websocket", "--stream-port", "\(server.webSocketPort)"]
        }
        if self.options.withPush { arguments.append("--with-push") }
        var environment = ProcessInfo.processInfo.environment
        environment["NOTIFY_BENCH_API_KEY"] = server.apiKey
        environment["NOTIFY_BENCH_TOKEN_SECRET"] = server.tokenSecret
        return try ChildProcess(executable: self.executable, arguments: arguments, environment: environment)
    }

    private func measure(_ server: LiveServer, streams: Int, rate: Int) async throws -> Run {
        let generator = try self.generator(server, streams: streams, rate: rate, probe: false)
        defer { generator.kill() }
        var marks: [String: (server: ProcessSample, redis: ProcessSample, generator: ProcessSample)] = [:]
        for await line in generator.lines {
            if line.hasPrefix("mark ") {
                marks[String(line.dropFirst(5))] = (
                    ProcessSample.take(server.pids), ProcessSample.take(server.redisPIDs),
                    ProcessSample.take([generator.pid])
                )
            } else if line.hasPrefix("report ") {
                let load = try JSONDecoder().decode(LiveLoadReport.self, from: Data(line.dropFirst(7).utf8))
                guard let start = marks["sending"], let end = marks["sent"], let connecting = marks["connecting"],
                    let ready = marks["ready"]
                else {
                    throw BenchError("the generator reported without its marks")
                }
                let serverCPU = end.server.cpuSeconds - start.server.cpuSeconds
                return Run(
                    server: server.name, streams: streams, rate: rate, load: load,
                    serverCores: end.server.cores(since: start.server), redisCores: end.redis.cores(since: start.redis),
                    generatorCores: end.generator.cores(since: start.generator),
                    serverMicrosecondsPerEvent: serverCPU / Double(max(1, load.accepted)) * 1e6,
                    connectServerCores: ready.server.cores(since: connecting.server),
                    connectGeneratorCores: ready.generator.cores(since: connecting.generator))
            }
        }
        generator.process.waitUntilExit()
        throw BenchError("the load generator exited (status \(generator.process.terminationStatus)) without a report")
    }

    private func probeMemory(_ server: LiveServer, streams: Int) async throws -> Memory {
        let before = ProcessSample.take(server.pids)
        let redisBefore = try await server.redisUsedMemory()
        let generator = try self.generator(server, streams: streams, rate: 2_000, probe: true)
        defer { generator.kill() }
        var idle: (ProcessSample, Int)?
        for await line in generator.lines {
            if line == "mark idle" {
                idle = (ProcessSample.take(server.pids), try await server.redisUsedMemory())
                generator.writeLine("done")
            } else if line.hasPrefix("report ") {
                let load = try JSONDecoder().decode(LiveLoadReport.self, from: Data(line.dropFirst(7).utf8))
                guard let (after, redisAfter) = idle else { throw BenchError("the generator never went idle") }
                return Memory(
                    server: server.name, streams: streams,
                    processBytesPerStream: Double(after.rssBytes - before.rssBytes) / Double(streams),
                    redisBytesPerStream: Double(redisAfter - redisBefore) / Double(streams), received: load.received)
            }
        }
        throw BenchError("the load generator exited without a report")
    }
}
