import Foundation

/// The live benchmark's summary: medians per server and load, the highest rate each sustained, idle memory per
/// stream, and the RESULT line (nchan's p99 ÷ ours at 5,000 streams × 5,000 events/s, or the largest load run).
public struct LiveBenchReport: Sendable {
    let runs: [LiveBenchmark.Run]
    let storms: [LiveBenchmark.Run]
    let memory: [LiveBenchmark.Memory]
    let options: LiveBenchmark.Options
    /// Lines of other figures of the same run (bench plexer's RPC), printed before the RESULT line.
    public var notes: [String] = []

    public init(_ outcome: LiveBenchmark.Outcome, options: LiveBenchmark.Options) {
        self.runs = outcome.runs
        self.storms = outcome.storms
        self.memory = outcome.memory
        self.options = options
    }

    struct Cell {
        var p50: Double
        var p99: Double
        var reached: Double
        var serverCores: Double
        var redisCores: Double
        var generatorCores: Double
        var microsecondsPerEvent: Double
        var clean: Bool
    }

    func cell(_ server: String, streams: Int, rate: Int) -> Cell? {
        let runs = self.runs.filter { $0.server == server && $0.streams == streams && $0.rate == rate }
        guard !runs.isEmpty else { return nil }
        return Cell(
            p50: median(runs.map(\.load.p50Ms)), p99: median(runs.map(\.load.p99Ms)),
            reached: median(runs.map(\.load.postedPerSecond)), serverCores: median(runs.map(\.serverCores)),
            redisCores: median(runs.map(\.redisCores)), generatorCores: median(runs.map(\.generatorCores)),
            microsecondsPerEvent: median(runs.map(\.serverMicrosecondsPerEvent)), clean: runs.allSatisfy(\.clean))
    }

    /// The highest rate tried at which every run of `server` was clean with p99 under 10 ms.
    func ceiling(_ server: String) -> Int? {
        let rates = Set(
            self.runs.filter { $0.server == server && $0.streams == self.options.ceilingStreams }.map(\.rate))
        return rates.sorted().last { rate in
            let runs = self.runs.filter {
                $0.server == server && $0.streams == self.options.ceilingStreams && $0.rate == rate
            }
            return runs.allSatisfy(LiveBenchmark.sustained)
        }
    }

    public var text: String {
        func f(_ value: Double) -> String { String(format: "%.2f", value) }
        var lines = [
            "",
            "load (streams × events/s)  server  reached/s  p50 ms  p99 ms  CPU server+Redis+generator  µs/event  clean",
        ]
        let loads = self.options.matrix + self.options.ceilingRates.map { (self.options.ceilingStreams, $0) }
        for (streams, rate) in loads {
            for server in self.options.peers {
                guard let cell = self.cell(server, streams: streams, rate: rate) else { continue }
                lines.append(
                    "\("\(streams) × \(rate)".padding(toLength: 26, withPad: " ", startingAt: 0))  "
                        + "\(server.padding(toLength: 6, withPad: " ", startingAt: 0))  \(Int(cell.reached))  "
                        + "\(f(cell.p50))  \(f(cell.p99))  \(Int(cell.serverCores * 100)) % + "
                        + "\(Int(cell.redisCores * 100)) % + \(Int(cell.generatorCores * 100)) %  "
                        + "\(Int(cell.microsecondsPerEvent))  \(cell.clean ? "yes" : "NO")")
            }
        }
        for server in self.options.peers where !self.options.ceilingRates.isEmpty {
            lines.append(
                "highest rate \(server) sustained at \(self.options.ceilingStreams) streams (p99 < 10 ms, nothing lost): "
                    + (self.ceiling(server).map { "\($0)/s" } ?? "none of \(self.options.ceilingRates)"))
        }
        for storm in self.storms {
            lines.append(
                "reconnect storm \(storm.server): \(storm.streams) streams ready after \(f(storm.load.readySeconds)) s, "
                    + "server CPU \(Int(storm.connectServerCores * 100)) % = \(Int(storm.serverMicrosecondsPerSocket)) µs "
                    + "per socket (generator \(Int(storm.connectGeneratorCores * 100)) %)"
            )
        }
        for probe in self.memory {
            lines.append(
                "idle memory \(probe.server), \(probe.streams) streams: "
                    + "\(f(probe.processBytesPerStream / 1_024)) KiB per stream in the process(es) + "
                    + "\(f(probe.redisBytesPerStream / 1_024)) KiB in Redis (\(probe.received) events received)")
        }
        lines += self.notes
        lines.append(self.result.description)
        return lines.joined(separator: "\n")
    }

    /// nchan's p99 ÷ ours at 5,000 × 5,000 (or the last load of the matrix).
    public var result: BenchResult {
        let load =
            self.options.matrix.first { $0.streams == 5_000 && $0.rate == 5_000 } ?? self.options.matrix.last
            ?? (5_000, 5_000)
        let ours = self.cell("notify", streams: load.streams, rate: load.rate)?.p99 ?? 0
        let peer = self.cell("nchan", streams: load.streams, rate: load.rate)?.p99 ?? 0
        return BenchResult(
            scenario: self.options.webSocket ? "plexer" : "live", ours: ours, peer: peer, unit: "ms",
            peerName: "nchan-\(self.options.webSocket ? "ws" : "sse")-\(load.streams)x\(load.rate)-p99",
            higherIsBetter: false)
    }
}
