import ArgumentParser
import Foundation
import NotifyBench
import RedisClient

/// `notify bench queue`: delay-queue throughput and due→handled lag, against redis-benchmark's raw command mix.
struct QueueBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "queue",
        abstract:
            "DelayQueue schedule/cancel/claim+ack throughput and lag vs redis-benchmark's raw ZADD+HSET/ZREM+HDEL."
    )

    @OptionGroup var options: GlobalOptions
    @Option(help: "Jobs per measurement.") var jobs = 100_000
    @Option(help: "Jobs per pipelined batch (and redis-benchmark's -P).") var batch = 128
    @Option(help: "Concurrent producers (and redis-benchmark's -c).") var workers = 4
    @Option(help: "Queue consumers draining the jobs.") var consumers = 2
    @Option(help: "Runs; the report shows medians.") var runs = 3
    @Option(help: "Window over which the lag run's jobs fall due (ms).") var lagSpreadMs = 10_000

    func run() async throws {
        let setup = try await ProcessSetup.bootstrap(self.options, part: "bench")
        let provision = try await RedisProvision.resolve(
            config: setup.config, startLocalIfUnset: true, logger: setup.logger)
        defer { provision.stop() }
        var options = QueueBenchmark.Options()
        options.jobs = self.jobs
        options.batch = self.batch
        options.workers = self.workers
        options.consumers = self.consumers
        options.lagSpreadMs = max(1, self.lagSpreadMs)
        options.runs = max(1, self.runs)
        print(
            "bench queue: \(self.jobs) jobs, batches of \(self.batch), \(self.workers) producers, "
                + "\(self.consumers) consumers, \(options.runs) runs")
        let report = try await QueueBenchmark(url: provision.configuration.url, options: options, logger: setup.logger)
            .run { print($0) }
        let rows: [(String, Double, Double?)] = [
            ("schedule (jobs/s)", report.scheduleJobsPerSecond, report.rawScheduleJobsPerSecond),
            ("cancel (jobs/s)", report.cancelJobsPerSecond, report.rawCancelJobsPerSecond),
            ("schedule+cancel (jobs/s)", report.oursCombined, report.rawCombined),
            ("claim+ack (jobs/s)", report.claimAckJobsPerSecond, nil),
        ]
        print("\nmeasure                   ours        raw mix (redis-benchmark)")
        for (name, ours, raw) in rows {
            let rawText = raw.map { String(Int($0)) } ?? "-"
            print(
                name.padding(toLength: 24, withPad: " ", startingAt: 0) + "  "
                    + String(Int(ours)).padding(toLength: 10, withPad: " ", startingAt: 0) + "  " + rawText)
        }
        print(
            "due→handled lag: p50 \(Int(report.lagP50Ms)) ms, p99 \(Int(report.lagP99Ms)) ms, max \(Int(report.lagMaxMs)) ms "
                + "(\(self.jobs) jobs due over \(self.lagSpreadMs) ms; target p99 ≤ 50 ms: \(report.lagP99Ms <= 50 ? "met" : "NOT met"))"
        )
        print(
            BenchResult(
                scenario: "queue", ours: report.oursCombined, peer: report.rawCombined, unit: "jobs/s",
                peerName: "redis-benchmark-raw-mix", higherIsBetter: true))
    }
}
