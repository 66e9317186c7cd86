import Foundation
import Testing

/// The benchmark commands run end to end on tiny inputs and end with their RESULT line. They measure nothing
/// here (numbers come from release builds, see docs/BENCHMARKS.md); they keep the tooling working. CPU heavy for
/// a few seconds, so `ops/test` runs them in its serial pass.
@Suite("Benchmark commands (smoke)", .timeLimit(.minutes(3)))
struct BenchSmokeTests {

    @Test(
        "each scenario ends with a well-formed RESULT line",
        arguments: [
            ["bench", "redis", "--requests", "2000", "--runs", "1", "--depths", "1,16"],
            ["bench", "queue", "--jobs", "2000", "--runs", "1", "--lag-spread-ms", "300"],
            [
                "bench", "ingest", "--singles", "200", "--groups", "10", "--streams", "20", "--live-events", "40",
                "--runs", "1",
            ],
            ["bench", "push", "--jobs", "100", "--concurrency", "64", "--steady-rate", "50", "--steady-seconds", "1"],
            [
                "bench", "live", "--matrix", "20x50", "--seconds", "1", "--runs", "1", "--ceiling-rates", "",
                "--memory-streams", "20",
            ],
            [
                "bench", "plexer", "--matrix", "20x50", "--seconds", "1", "--runs", "1", "--ceiling-rates", "",
                "--memory-streams", "20", "--storm-streams", "50", "--rpc-runs", "1", "--rpc-seconds", "0.5",
                "--rpc-connections", "4",
            ],
        ])
    func resultLine(arguments: [String]) async throws {
        var environment = NotifyBinary.cleanEnvironment
        environment["NOTIFY_LOG_LEVEL"] = "error"
        let (status, text) = try await NotifyBinary.run(arguments, environment: environment)
        #expect(status == 0)
        let last = text.split(separator: "\n").last.map(String.init) ?? ""
        let pattern = #/RESULT (\w+) ours=[0-9.]+[a-z/]+ peer=[0-9.]+[a-z/]+ peer_name=[\w-]+ advantage=[0-9.]+/#
        let match = try #require(last.wholeMatch(of: pattern), "last line was: \(last)")
        #expect(match.output.1 == arguments[1])
    }
}
