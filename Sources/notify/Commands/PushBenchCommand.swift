import ArgumentParser
import Foundation
import NotifyBench
import RedisClient

/// `notify bench push`: the push worker against the same fake gateways driven by a plain client loop.
struct PushBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "push",
        abstract:
            "Push worker throughput (jobs due at once, webhook + Web Push each, HTTP/1.1 and HTTP/2) vs a plain async-http-client loop; steady-rate lag."
    )

    @OptionGroup var options: GlobalOptions
    @Option(help: "Jobs due at once (two devices each).") var jobs = 50_000
    @Option(help: "Requests in flight, for the worker and for the plain loop.") var concurrency = 512
    @Option(help: "Steady run: pushes per second.") var steadyRate = 1_000
    @Option(help: "Steady run: seconds.") var steadySeconds = 10
    @Option(help: "Runs per mode; the report shows medians.") var runs = 1
    @Option(help: "Modes to run, comma-separated: http1 (plain HTTP/1.1), h2 (HTTP/2 over TLS).") var modes =
        "http1,h2"

    func run() async throws {
        let setup = try await ProcessSetup.bootstrap(self.options, part: "bench", defaultLogLevel: "warning")
        let provision = try await RedisProvision.resolve(
            config: setup.config, startLocalIfUnset: true, logger: setup.logger)
        defer { provision.stop() }
        var options = PushBenchmark.Options()
        options.jobs = max(1, self.jobs)
        options.concurrency = max(1, self.concurrency)
        options.steadyRate = max(1, self.steadyRate)
        options.steadySeconds = max(1, self.steadySeconds)
        options.runs = max(1, self.runs)
        options.modes = Set(self.modes.split(separator: ",").map { String($0) })
        guard !options.modes.isEmpty, options.modes.isSubset(of: ["http1", "h2"]) else {
            throw ValidationError("--modes takes http1, h2 or both")
        }
        print(
            "bench push: \(options.jobs) jobs due at once × 2 devices (webhook, Web Push), \(options.concurrency) in "
                + "flight, \(options.runs) run(s) per mode; steady \(options.steadyRate)/s for \(options.steadySeconds) s"
        )
        let report = try await PushBenchmark(url: provision.configuration.url, options: options, logger: setup.logger)
            .run { print($0) }
        print("\nmode    worker pushes/s  plain loop pushes/s  ratio  due→sent p50 / p99 / max (ms)")
        for row in report.rows {
            let ratio = row.limitPerSecond > 0 ? row.oursPerSecond / row.limitPerSecond : 0
            print(
                row.mode.padding(toLength: 6, withPad: " ", startingAt: 0)
                    + "  \(String(Int(row.oursPerSecond)).leftPadded(15))  \(String(Int(row.limitPerSecond)).leftPadded(19))"
                    + "  \(String(format: "%.2f", ratio).leftPadded(5))  \(row.lagP50Ms) / \(row.lagP99Ms) / \(row.lagMaxMs)"
            )
        }
        print("\nCPU per push (µs): the bench process in the worker phase + its Redis, and in the plain loop phase")
        for row in report.rows {
            print(
                row.mode.padding(toLength: 6, withPad: " ", startingAt: 0)
                    + "  worker \(Int(row.oursCPUMicros)) + Redis \(Int(row.oursRedisMicros))"
                    + "  plain loop \(Int(row.limitCPUMicros))")
        }
        print(
            "steady \(options.steadyRate)/s: due→sent p50 \(report.steadyP50Ms) ms, p99 \(report.steadyP99Ms) ms, max "
                + "\(report.steadyMaxMs) ms (target p99 ≤ 50 ms: \(report.steadyP99Ms <= 50 ? "met" : "NOT met"))")
        print(
            "peak RSS of the bench process (worker, fake gateways and plain loop together): \(Int(report.peakRSSMiB)) MiB"
        )
        // The headline: the weaker mode.
        let weakest = report.rows.min {
            $0.oursPerSecond / max(1, $0.limitPerSecond) < $1.oursPerSecond / max(1, $1.limitPerSecond)
        }
        print(
            BenchResult(
                scenario: "push", ours: weakest?.oursPerSecond ?? 0, peer: weakest?.limitPerSecond ?? 0,
                unit: "pushes/s",
                peerName: "ahc-plain-loop-\(weakest?.mode ?? "")", higherIsBetter: true))
    }
}
