import ArgumentParser
import Foundation
import NotifyBench
import NotifyCore
import RedisClient
import ServiceLifecycle

/// `notify bench ingest`: HTTP ingest against the API (run in this process on a loopback port, with its own Redis
/// unless NOTIFY_REDIS_URL is set), side by side with redis-benchmark's raw XADD + ZADD + PUBLISH.
struct IngestBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest",
        abstract: "HTTP ingest (1 and 100 recipients) and ingest→SSE latency vs redis-benchmark's XADD+ZADD+PUBLISH."
    )

    @OptionGroup var options: GlobalOptions
    @Option(help: "Concurrent HTTP clients (and redis-benchmark's -c).") var connections = 16
    @Option(help: "Single-recipient notifications per run.") var singles = 20_000
    @Option(help: "100-recipient notifications per run.") var groups = 1_000
    @Option(help: "Connected SSE clients for the live-latency measurement.") var streams = 1_000
    @Option(help: "Notifications sent to them.") var liveEvents = 2_000
    @Option(help: "Their rate per second.") var liveRate = 1_000
    @Option(help: "Runs; the report shows medians.") var runs = 3

    func run() async throws {
        let setup = try await ProcessSetup.bootstrap(self.options, part: "bench", defaultLogLevel: "warning")
        let provision = try await RedisProvision.resolve(
            config: setup.config, startLocalIfUnset: true, logger: setup.logger)
        defer { provision.stop() }
        let secret = Base64URL.random(byteCount: 32)
        let process = try await APIProcess.prepare(
            setup: setup, provision: provision, dev: true, userTokens: UserTokenConfiguration(hs256Secret: secret))
        guard let apiKey = process.assembly.devCredentials?.backendKey else {
            throw ValidationError("bench ingest makes up its own API key; unset NOTIFY_AUTH_API_KEYS")
        }
        var options = IngestBenchmark.Options()
        options.connections = self.connections
        options.singles = self.singles
        options.groups = self.groups
        options.streams = self.streams
        options.liveEvents = self.liveEvents
        options.liveRatePerSecond = max(1, self.liveRate)
        options.runs = max(1, self.runs)

        let (listening, announce) = AsyncStream.makeStream(of: String.self)
        let group = process.serviceGroup(http: HTTPListenConfiguration(host: "127.0.0.1", port: 0), signals: []) {
            bases in announce.yield(bases.api)
        }
        let report = try await withThrowingTaskGroup(of: IngestBenchmark.Report?.self) { tasks in
            tasks.addTask {
                try await group.run()
                return nil
            }
            var iterator = listening.makeAsyncIterator()
            guard let base = await iterator.next() else { throw ValidationError("the API did not start") }
            print(
                "bench ingest: API at \(base), \(self.connections) HTTP clients, \(self.singles) single and "
                    + "\(self.groups) 100-recipient notifications, \(self.streams) SSE clients, \(options.runs) runs")
            let benchmark = IngestBenchmark(
                baseURL: base, apiKey: apiKey, redisURL: provision.configuration.url, options: options
            ) { user in try await DevTokenMinter.token(for: user, secret: secret) }
            let report = try await benchmark.run { print($0) }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
            return report
        }
        print(
            """

            measure                              ours            raw limit (redis-benchmark)
            1 recipient (notifications/s)        \(Int(report.singlePerSecond))  p50 \(report.singleP50Ms) ms  p99 \(report.singleP99Ms) ms
            100 recipients (notifications/s)     \(Int(report.groupPerSecond))  p50 \(report.groupP50Ms) ms  p99 \(report.groupP99Ms) ms
            recipient deliveries/s (100-rcpt)    \(Int(report.groupDeliveriesPerSecond))          \(Int(report.rawDeliveriesPerSecond)) (XADD+ZADD+PUBLISH triples/s)
            ingest→SSE latency, \(self.streams) clients       p50 \(report.liveP50Ms) ms  p99 \(report.liveP99Ms) ms  (\(report.liveReceived)/\(self.liveEvents) received)
            """)
        print(
            BenchResult(
                scenario: "ingest", ours: report.groupDeliveriesPerSecond, peer: report.rawDeliveriesPerSecond,
                unit: "deliveries/s", peerName: "redis-benchmark-xadd-zadd-publish", higherIsBetter: true))
    }
}
