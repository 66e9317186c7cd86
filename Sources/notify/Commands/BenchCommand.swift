import ArgumentParser
import Foundation
import Logging
import NotifyBench
import NotifyCore
import RedisClient

/// `notify bench <scenario>`: side-by-side benchmarks that end with a RESULT line.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Run a benchmark scenario against a peer in the same run.",
        subcommands: [
            RedisBenchCommand.self, QueueBenchCommand.self, IngestBenchCommand.self, PushBenchCommand.self,
            LiveBenchCommand.self, PlexerBenchCommand.self, LiveLoadCommand.self,
        ]
    )
}

/// `notify bench redis`: our client against redis-benchmark, same commands, depths and connections.
struct RedisBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "redis",
        abstract: "RedisClient vs redis-benchmark: ZADD and a small EVALSHA at pipeline depths 1, 16, 128."
    )

    @OptionGroup var options: GlobalOptions

    @Option(help: "Connections on each side.") var connections = 4
    @Option(help: "Commands per measurement.") var requests = 200_000
    @Option(help: "Pipeline depths, comma separated.") var depths = "1,16,128"
    @Option(help: "Runs per row; the report shows medians.") var runs = 3

    func run() async throws {
        let setup = try await ProcessSetup.bootstrap(self.options, part: "bench")
        let provision = try await RedisProvision.resolve(
            config: setup.config, startLocalIfUnset: true, logger: setup.logger)
        defer { provision.stop() }
        var benchOptions = RedisClientBenchmark.Options()
        benchOptions.connections = self.connections
        benchOptions.requests = self.requests
        benchOptions.depths = self.depths.split(separator: ",").compactMap { Int($0) }
        benchOptions.runs = max(1, self.runs)
        guard let deepest = benchOptions.depths.max() else {
            throw ValidationError("--depths needs at least one number")
        }

        print(
            "bench redis: \(self.connections) connections, \(self.requests) commands per run, \(benchOptions.runs) runs"
        )
        let rows = try await RedisClientBenchmark(
            url: provision.configuration.url, options: benchOptions, logger: setup.logger
        ).run { print($0) }

        print("\ncommand  depth  ours ops/s  redis-benchmark ops/s  ratio")
        for row in rows {
            let ratio = row.peer > 0 ? row.ours / row.peer : 0
            print(
                "\(row.command.padding(toLength: 8, withPad: " ", startingAt: 0)) \(String(row.depth).leftPadded(5))"
                    + "  \(String(Int(row.ours)).leftPadded(10))  \(String(Int(row.peer)).leftPadded(21))  "
                    + "\(String(format: "%.2f", ratio))")
        }
        // The headline: the weaker of the two commands at the deepest pipeline.
        let deepRows = rows.filter { $0.depth == deepest }
        let headline = deepRows.min { ($0.ours / $0.peer) < ($1.ours / $1.peer) }!
        print(
            BenchResult(
                scenario: "redis", ours: headline.ours, peer: headline.peer, unit: "ops/s",
                peerName: "redis-benchmark", higherIsBetter: true))
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        self.count >= width ? self : String(repeating: " ", count: width - self.count) + self
    }
}
