import ArgumentParser
import Foundation
import NotifyBench
import NotifyCore

/// `notify bench live`: the live path (open SSE streams, one POST per event) side by side with nchan.
struct LiveBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "live",
        abstract:
            "Live delivery to open SSE streams (one POST per event to a random connected user) vs nchan on nginx, same generator, same run."
    )

    @OptionGroup var options: GlobalOptions
    @Option(help: "Loads as streams×rate, comma-separated.") var matrix = "1000x1000,5000x1000,5000x5000"
    @Option(help: "Seconds each load is sent for.") var seconds = 10.0
    @Option(help: "Runs per load and server (alternating which goes first); the report shows medians.") var runs = 2
    @Option(help: "Rates tried for the highest sustained (p99 < 10 ms, nothing lost), comma-separated; empty: none.")
    var ceilingRates = "6000,8000,10000,12000"
    @Option(help: "Streams for those rates.") var ceilingStreams = 5_000
    @Option(help: "Idle streams for the memory per stream (0: skip).") var memoryStreams = 18_000
    @Option(
        help:
            "Streams connecting at once for the reconnect storm (0: skip; default: 19000 for bench plexer, 0 for bench live; the open-file limit bounds it)."
    )
    var stormStreams: Int?
    @Option(help: "Servers, comma-separated: notify, nchan.") var peers = "notify,nchan"
    @Flag(help: "Each Notify event also schedules the default push (inbox + push job) instead of \"push\": null.")
    var withPush = false
    @Flag(help: "Streams over WebSockets (Notify's Plexer, nchan's websocket subscriber) instead of SSE.")
    var webSocket = false

    func run() async throws {
        try await self.run(before: { [] })
    }

    /// Runs the benchmark after `before` (other figures of the same run, whose summary lines it returns).
    func run(before: () async throws -> [String]) async throws {
        _ = try await ProcessSetup.bootstrap(self.options, part: "bench", defaultLogLevel: "warning")
        let notes = try await before()
        var options = LiveBenchmark.Options()
        options.matrix = try Self.loads(self.matrix)
        options.seconds = max(1, self.seconds)
        options.runs = max(1, self.runs)
        options.ceilingRates = self.ceilingRates.split(separator: ",").compactMap { Int($0) }
        options.ceilingStreams = max(1, self.ceilingStreams)
        options.memoryStreams = max(0, self.memoryStreams)
        options.stormStreams = max(0, self.stormStreams ?? (self.webSocket ? 19_000 : 0))
        options.peers = self.peers.split(separator: ",").map(String.init)
        options.withPush = self.withPush
        options.webSocket = self.webSocket
        let executable = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        Self.say(
            "bench live (\(options.webSocket ? "WebSocket" : "SSE")): \(options.peers.joined(separator: " vs ")), "
                + "\(options.seconds) s per load, \(options.runs) "
                + "run(s) each, push \(options.withPush ? "default" : "null")")
        let outcome = try await LiveBenchmark(executable: executable, options: options).run { Self.say($0) }
        var report = LiveBenchReport(outcome, options: options)
        report.notes = notes
        Self.say(report.text)
    }

    /// Progress as it comes, also when stdout is a file (print buffers until exit there).
    static func say(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }

    static func loads(_ text: String) throws -> [(streams: Int, rate: Int)] {
        try text.split(separator: ",").map { entry in
            let parts = entry.split(separator: "x").compactMap { Int($0) }
            guard parts.count == 2, parts[0] > 0, parts[1] > 0 else {
                throw ValidationError("loads look like 5000x1000 (streams x events per second)")
            }
            return (parts[0], parts[1])
        }
    }
}

/// `notify bench live-load`: the live benchmark's load generator (started by `notify bench live`).
struct LiveLoadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "live-load", abstract: "The load generator of bench live (run by it).", shouldDisplay: false)

    @Option var target: String
    @Option var port: Int
    @Option var transport = "sse"
    @Option var streamPort: Int?
    @Option var streams: Int
    @Option var rate: Int
    @Option var seconds: Double
    @Option var postConnections = 32
    @Option var userPrefix = "lu"
    @Flag var withPush = false
    @Flag var probeMemory = false

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        var options = LiveLoadGenerator.Options(
            target: self.target, port: self.port, streams: self.streams, ratePerSecond: self.rate,
            seconds: self.seconds)
        options.postConnections = self.postConnections
        options.transport = self.transport
        options.streamPort = self.streamPort
        options.userPrefix = self.userPrefix
        options.withPush = self.withPush
        options.probeMemory = self.probeMemory
        options.apiKey = environment["NOTIFY_BENCH_API_KEY"] ?? ""
        if self.target == "notify" {
            let users = (0..<self.streams).map { "\(self.userPrefix)\($0)" }
            options.tokens = try await DevTokenMinter.tokens(
                for: users, secret: environment["NOTIFY_BENCH_TOKEN_SECRET"] ?? "")
        }
        let report = try await LiveLoadGenerator(options: options).run()
        let json = try JSONEncoder().encode(report)
        FileHandle.standardOutput.write(Data("report ".utf8) + json + Data("\n".utf8))
    }
}

/// `notify bench plexer`: `bench live` over WebSockets: the Plexer (in the API's process) against nchan's websocket
/// subscriber, same generator, same run; the RESULT compares p99 at 5,000 sockets × 5,000 events/s.
struct PlexerBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plexer",
        abstract: "Live delivery over WebSockets: the Plexer vs nchan's websocket subscriber (bench live --web-socket)."
    )

    @OptionGroup var live: LiveBenchCommand
    @Option(help: "Runs of the RPC comparison per path (0: skip).") var rpcRuns = 3
    @Option(help: "Seconds per RPC run.") var rpcSeconds = 5.0
    @Option(help: "Connections of the RPC comparison, each with one request at a time.") var rpcConnections = 64

    func run() async throws {
        var command = self.live
        command.webSocket = true
        try await command.run {
            guard self.rpcRuns > 0 else { return [] }
            var options = RPCBenchmark.Options()
            options.runs = self.rpcRuns
            options.seconds = max(0.5, self.rpcSeconds)
            options.connections = max(1, self.rpcConnections)
            let executable = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
            LiveBenchCommand.say(
                "bench plexer, RPC: \(options.connections) connections, one request at a time each, through the "
                    + "Plexer's HTTP channel vs directly to the same local upstream, \(options.seconds) s per run")
            let runs = try await RPCBenchmark(executable: executable, options: options).run { LiveBenchCommand.say($0) }
            return RPCBenchmark.summary(runs)
        }
    }
}
