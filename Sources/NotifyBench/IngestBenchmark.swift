import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import RedisClient
import Synchronization

/// `notify bench ingest`: HTTP ingest throughput and latency against a running API, side by side with
/// redis-benchmark running the raw commands one delivery needs (XADD + ZADD + PUBLISH), and ingest→SSE latency
/// with many connected clients.
public struct IngestBenchmark: Sendable {
    public struct Options: Sendable {
        /// Concurrent HTTP clients sending notifications (and redis-benchmark's -c).
        public var connections = 16
        /// Single-recipient notifications per run.
        public var singles = 20_000
        /// 100-recipient notifications per run.
        public var groups = 1_000
        public var groupSize = 100
        /// Connected SSE clients for the live-latency measurement.
        public var streams = 1_000
        /// Notifications sent (to random connected users) while measuring live latency, and how fast.
        public var liveEvents = 2_000
        public var liveRatePerSecond = 1_000
        public var runs = 3
        public init() {}
    }

    public struct Report: Sendable {
        public var singlePerSecond: Double
        public var singleP50Ms: Double
        public var singleP99Ms: Double
        public var groupPerSecond: Double
        public var groupP50Ms: Double
        public var groupP99Ms: Double
        /// redis-benchmark's XADD, ZADD and PUBLISH rates combined into deliveries (triples) per second.
        public var rawDeliveriesPerSecond: Double
        public var liveP50Ms: Double
        public var liveP99Ms: Double
        public var liveReceived: Int

        /// Recipient deliveries per second of the 100-recipient run.
        public var groupDeliveriesPerSecond: Double { self.groupPerSecond * 100 }
    }

    let baseURL: String
    let apiKey: String
    let redisURL: RedisURL
    let options: Options
    /// Mints a user token for the SSE clients.
    let token: @Sendable (String) async throws -> String

    public init(
        baseURL: String, apiKey: String, redisURL: RedisURL, options: Options,
        token: @escaping @Sendable (String) async throws -> String
    ) {
        self.baseURL = baseURL
        self.apiKey = apiKey
        self.redisURL = redisURL
        self.options = options
        self.token = token
    }

    public func run(progress: (String) -> Void) async throws -> Report {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = self.options.streams + 64
        configuration.timeout.read = .seconds(120)
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        defer { _ = http.shutdown() }
        var reports: [Report] = []
        for run in 1...self.options.runs {
            let single = try await self.ingest(http, count: self.options.singles, recipients: 1)
            let group = try await self.ingest(http, count: self.options.groups, recipients: self.options.groupSize)
            let raw = try self.rawDeliveries()
            let report = Report(
                singlePerSecond: single.perSecond, singleP50Ms: single.p50, singleP99Ms: single.p99,
                groupPerSecond: group.perSecond, groupP50Ms: group.p50, groupP99Ms: group.p99,
                rawDeliveriesPerSecond: raw, liveP50Ms: 0, liveP99Ms: 0, liveReceived: 0)
            progress(
                "run \(run): 1 recipient \(Int(single.perSecond))/s (p50 \(single.p50) ms, p99 \(single.p99) ms); "
                    + "\(self.options.groupSize) recipients \(Int(group.perSecond))/s = "
                    + "\(Int(report.groupDeliveriesPerSecond)) deliveries/s (p50 \(group.p50) ms, p99 \(group.p99) ms); "
                    + "raw XADD+ZADD+PUBLISH \(Int(raw)) deliveries/s")
            reports.append(report)
        }
        var result = Report(
            singlePerSecond: median(reports.map(\.singlePerSecond)), singleP50Ms: median(reports.map(\.singleP50Ms)),
            singleP99Ms: median(reports.map(\.singleP99Ms)), groupPerSecond: median(reports.map(\.groupPerSecond)),
            groupP50Ms: median(reports.map(\.groupP50Ms)), groupP99Ms: median(reports.map(\.groupP99Ms)),
            rawDeliveriesPerSecond: median(reports.map(\.rawDeliveriesPerSecond)), liveP50Ms: 0, liveP99Ms: 0,
            liveReceived: 0)
        let live = try await self.liveLatency(http)
        result.liveP50Ms = live.p50
        result.liveP99Ms = live.p99
        result.liveReceived = live.received
        progress(
            "live: \(live.received)/\(self.options.liveEvents) events to \(self.options.streams) SSE clients, "
                + "ingest→client p50 \(live.p50) ms, p99 \(live.p99) ms")
        return result
    }

    // MARK: Ingest throughput

    private func ingest(_ http: HTTPClient, count: Int, recipients: Int) async throws
        -> (perSecond: Double, p50: Double, p99: Double)
    {
        let latencies = LatencyRecorder()
        let next = Counter()
        let started = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<self.options.connections {
                group.addTask {
                    while let index = next.take(below: count) {
                        let users = (0..<recipients).map { "\"u\(index &* 7_919 &+ $0 &* 104_729 % 100_000)\"" }
                        let body =
                            #"{"recipients":[\#(users.joined(separator: ","))],"type":"message","room":"bench","#
                            + #""payload":{"text":"hello from the benchmark","n":\#(index)}}"#
                        let sent = ContinuousClock.now
                        try await self.post(http, path: "/v1/notifications", body: body, expecting: 202)
                        latencies.record(microseconds: (ContinuousClock.now - sent).microseconds)
                    }
                }
            }
            try await group.waitForAll()
        }
        let elapsed = (ContinuousClock.now - started).seconds
        return (Double(count) / elapsed, latencies.percentileMs(50), latencies.percentileMs(99))
    }

    private func post(_ http: HTTPClient, path: String, body: String, expecting status: UInt) async throws {
        var request = HTTPClientRequest(url: self.baseURL + path)
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer \(self.apiKey)")
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: body))
        let response = try await http.execute(request, timeout: .seconds(60))
        let answer = try await response.body.collect(upTo: 16 << 20)
        guard response.status.code == status else {
            throw BenchError("\(path) answered \(response.status.code): \(String(buffer: answer).prefix(300))")
        }
    }

    /// redis-benchmark's XADD, ZADD and PUBLISH, each at the same connections and pipeline depth 16, combined:
    /// one delivery needs one of each, so deliveries/s = 1 / (1/xadd + 1/zadd + 1/publish).
    private func rawDeliveries() throws -> Double {
        let tool = RedisBenchmarkTool(url: self.redisURL, connections: self.options.connections, requests: 200_000)
        // As long as a rendered event of the HTTP runs; no commas or quotes, which would break redis-benchmark's CSV.
        let payload = String(repeating: "x", count: 110)
        let xadd = try tool.run(
            depth: 16, command: ["XADD", "bench:{1}:inbox:__rand_int__", "MAXLEN", "~", "1000", "*", "e", payload],
            keyspace: 100_000)
        let zadd = try tool.run(depth: 16, command: ["ZADD", "bench:{1}:due", "__rand_int__", "job:__rand_int__"])
        let publish = try tool.run(depth: 16, command: ["PUBLISH", "bench:{1}:live:__rand_int__", payload])
        return 1 / (1 / xadd + 1 / zadd + 1 / publish)
    }

    // MARK: Live latency

    private func liveLatency(_ http: HTTPClient) async throws -> (p50: Double, p99: Double, received: Int) {
        let latencies = LatencyRecorder()
        let received = Counter()
        let users = (0..<self.options.streams).map { "live\($0)" }
        var tokens: [String] = []
        for user in users { tokens.append(try await self.token(user)) }
        let (ready, readyContinuation) = AsyncStream.makeStream(of: Void.self)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            for token in tokens {
                group.addTask {
                    try await self.readStream(http, token: token, latencies: latencies, received: received) {
                        readyContinuation.yield()
                    }
                }
            }
            var readyCount = 0
            for await _ in ready {
                readyCount += 1
                if readyCount == users.count { break }
            }
            let interval = Duration.seconds(1) / self.options.liveRatePerSecond
            var due = ContinuousClock.now
            for index in 0..<self.options.liveEvents {
                due += interval
                try await Task.sleep(until: due)
                let user = users[index &* 7_919 % users.count]
                let sentMs = Date().timeIntervalSince1970 * 1000
                try await self.post(
                    http, path: "/v1/notifications",
                    body: #"{"recipients":["\#(user)"],"type":"message","push":null,"payload":{"t":\#(sentMs)}}"#,
                    expecting: 202)
            }
            // Give the last events a moment to arrive, then close the streams.
            let deadline = ContinuousClock.now + .seconds(5)
            while received.value < self.options.liveEvents, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(10))
            }
            group.cancelAll()
            return (latencies.percentileMs(50), latencies.percentileMs(99), received.value)
        }
    }

    private func readStream(
        _ http: HTTPClient, token: String, latencies: LatencyRecorder, received: Counter, onReady: () -> Void
    ) async throws {
        var request = HTTPClientRequest(url: self.baseURL + "/v1/stream")
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        let response = try await http.execute(request, timeout: .seconds(600))
        guard response.status == .ok else { throw BenchError("/v1/stream answered \(response.status.code)") }
        var pending = ""
        do {
            for try await chunk in response.body {
                let nowMs = Date().timeIntervalSince1970 * 1000
                pending += String(buffer: chunk)
                while let end = pending.range(of: "\n\n") {
                    let event = pending[..<end.lowerBound]
                    pending.removeSubrange(..<end.upperBound)
                    if event.contains(": ready") { onReady() }
                    if let marker = event.range(of: #""t":"#) {
                        let number = event[marker.upperBound...].prefix { $0.isNumber || $0 == "." }
                        if let sentMs = Double(number) {
                            latencies.record(microseconds: Int64((nowMs - sentMs) * 1000))
                            received.increment()
                        }
                    }
                }
            }
        } catch is CancellationError {
            return
        }
    }
}

/// A shared counter for the benchmark's tasks.
final class Counter: Sendable {
    private let count = Mutex(0)

    /// Takes the next index while it is below `limit`.
    func take(below limit: Int) -> Int? {
        self.count.withLock { value in
            guard value < limit else { return nil }
            value += 1
            return value - 1
        }
    }

    func increment() { self.count.withLock { $0 += 1 } }
    var value: Int { self.count.withLock { $0 } }
}
