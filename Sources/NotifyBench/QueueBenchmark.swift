import DelayQueue
import Foundation
import Histogram
import Logging
import NIOCore
import NotifyCore
import RedisClient
import Synchronization

/// `notify bench queue`: the delay queue's throughput and precision, with `redis-benchmark` running the raw
/// command mix of the same work (ZADD+HSET to schedule, ZREM+HDEL to cancel) as the limit.
public struct QueueBenchmark: Sendable {
    public struct Options: Sendable {
        public var jobs = 100_000
        public var batch = 128
        public var workers = 4
        public var consumers = 2
        public var shards = 64
        /// Due times of the lag run spread uniformly over this window, starting one second out.
        public var lagSpreadMs = 10_000
        public var runs = 3

        public init() {}
    }

    /// Medians over the runs.
    public struct Report: Sendable {
        public var scheduleJobsPerSecond = 0.0
        public var cancelJobsPerSecond = 0.0
        public var rawScheduleJobsPerSecond = 0.0
        public var rawCancelJobsPerSecond = 0.0
        public var claimAckJobsPerSecond = 0.0
        public var lagP50Ms = 0.0
        public var lagP99Ms = 0.0
        public var lagMaxMs = 0.0

        /// Schedule then cancel of the same jobs, as jobs per second of the two together.
        public var oursCombined: Double { Self.combined(self.scheduleJobsPerSecond, self.cancelJobsPerSecond) }
        public var rawCombined: Double { Self.combined(self.rawScheduleJobsPerSecond, self.rawCancelJobsPerSecond) }

        static func combined(_ first: Double, _ second: Double) -> Double {
            guard first > 0, second > 0 else { return 0 }
            return 2 / (1 / first + 1 / second)
        }
    }

    private let url: RedisURL
    private let options: Options
    private let logger: Logger

    public init(url: RedisURL, options: Options, logger: Logger) {
        self.url = url
        self.options = options
        self.logger = logger
    }

    public func run(progress: (String) -> Void) async throws -> Report {
        var runs: [Report] = []
        for run in 1...self.options.runs {
            let report = try await self.measureOnce()
            progress(
                "  run \(run): schedule \(Int(report.scheduleJobsPerSecond))/s, cancel \(Int(report.cancelJobsPerSecond))/s, "
                    + "raw ZADD+HSET \(Int(report.rawScheduleJobsPerSecond))/s, raw ZREM+HDEL \(Int(report.rawCancelJobsPerSecond))/s, "
                    + "claim+ack \(Int(report.claimAckJobsPerSecond))/s, lag p50 \(report.lagP50Ms) ms p99 \(report.lagP99Ms) ms"
            )
            runs.append(report)
        }
        var report = Report()
        report.scheduleJobsPerSecond = median(runs.map(\.scheduleJobsPerSecond))
        report.cancelJobsPerSecond = median(runs.map(\.cancelJobsPerSecond))
        report.rawScheduleJobsPerSecond = median(runs.map(\.rawScheduleJobsPerSecond))
        report.rawCancelJobsPerSecond = median(runs.map(\.rawCancelJobsPerSecond))
        report.claimAckJobsPerSecond = median(runs.map(\.claimAckJobsPerSecond))
        report.lagP50Ms = median(runs.map(\.lagP50Ms))
        report.lagP99Ms = median(runs.map(\.lagP99Ms))
        report.lagMaxMs = median(runs.map(\.lagMaxMs))
        return report
    }

    private func measureOnce() async throws -> Report {
        try await RedisClient(
            configuration: RedisClientConfiguration(url: self.url, maxConnections: self.options.workers),
            logger: self.logger
        ).closing { try await self.measure(client: $0) }
    }

    private func measure(client: RedisClient) async throws -> Report {
        var report = Report()
        let queue = DelayQueue(client: client, shards: ShardMap(count: self.options.shards))
        let ids = try (0..<self.options.jobs).map { try JobID(notificationID: "n\($0)", userID: "user\($0 % 10_007)") }
        let payload = ByteBuffer(string: #"{"title":"New message","body":"Hi there","room":"r1"}"#)

        try await client.send("FLUSHALL")
        try await queue.prepare()
        report.scheduleJobsPerSecond = try await self.timed(ids.count) {
            try await self.inBatches(ids) { batch in
                _ = try await queue.schedule(batch: batch.map { (QueueJob(id: $0, payload: payload), 60_000) })
            }
        }
        report.cancelJobsPerSecond = try await self.timed(ids.count) {
            try await self.inBatches(ids) { batch in _ = try await queue.cancel(batch: batch) }
        }

        try await client.send("FLUSHALL")
        let tool = RedisBenchmarkTool(url: self.url, connections: self.options.workers, requests: self.options.jobs)
        let keyspace = self.options.jobs
        let value = String(repeating: "x", count: payload.readableBytes)
        let zadd = try tool.run(
            depth: self.options.batch, command: ["zadd", "dq:bench", "__rand_int__", "j:__rand_int__"],
            keyspace: keyspace)
        let hset = try tool.run(
            depth: self.options.batch, command: ["hset", "dq:bench:job", "j:__rand_int__", value], keyspace: keyspace)
        let zrem = try tool.run(
            depth: self.options.batch, command: ["zrem", "dq:bench", "j:__rand_int__"], keyspace: keyspace)
        let hdel = try tool.run(
            depth: self.options.batch, command: ["hdel", "dq:bench:job", "j:__rand_int__"], keyspace: keyspace)
        report.rawScheduleJobsPerSecond = 1 / (1 / zadd + 1 / hset)
        report.rawCancelJobsPerSecond = 1 / (1 / zrem + 1 / hdel)

        try await client.send("FLUSHALL")
        try await queue.prepare()
        try await self.inBatches(ids) { batch in
            _ = try await queue.schedule(batch: batch.map { (QueueJob(id: $0, payload: payload), 0) })
        }
        report.claimAckJobsPerSecond = try await self.drain(queue: queue, expected: ids.count, lag: nil).jobsPerSecond

        try await client.send("FLUSHALL")
        try await queue.prepare()
        let lag = LatencyRecorder()
        _ = try await self.drain(queue: queue, expected: ids.count, lag: lag) {
            try await self.inBatches(ids) { batch in
                _ = try await queue.schedule(
                    batch: batch.map {
                        (QueueJob(id: $0, payload: payload), 1_000 + Int.random(in: 0..<self.options.lagSpreadMs))
                    })
            }
        }
        report.lagP50Ms = lag.percentile(50)
        report.lagP99Ms = lag.percentile(99)
        report.lagMaxMs = lag.percentile(100)
        return report
    }

    /// Runs `body` over `ids` in batches, `workers` batches at a time.
    private func inBatches(_ ids: [JobID], _ body: @escaping @Sendable ([JobID]) async throws -> Void) async throws {
        let batches = stride(from: 0, to: ids.count, by: self.options.batch).map {
            Array(ids[$0..<min($0 + self.options.batch, ids.count)])
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<self.options.workers {
                group.addTask {
                    for index in stride(from: worker, to: batches.count, by: self.options.workers) {
                        try await body(batches[index])
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    private func timed(_ count: Int, _ body: () async throws -> Void) async throws -> Double {
        let start = ContinuousClock.now
        try await body()
        return Double(count) / (ContinuousClock.now - start).seconds
    }

    /// Runs `consumers` consumers with a handler that only counts (and records lateness) until `expected` jobs are
    /// handled; `produce` runs once they are up.
    private func drain(
        queue: DelayQueue, expected: Int, lag: LatencyRecorder?,
        produce: @escaping @Sendable () async throws -> Void = {}
    ) async throws -> (jobsPerSecond: Double, Void) {
        let subscriber = RedisSubscriber(configuration: RedisClientConfiguration(url: self.url), logger: self.logger)
        let handled = Atomic<Int>(0)
        let done = AsyncStream.makeStream(of: Void.self)
        let consumers = (0..<self.options.consumers).map { index in
            QueueConsumer(queue: queue, subscriber: subscriber, id: "bench-\(index)", logger: self.logger) { job, _ in
                if let lag {
                    let now = Int64(Date().timeIntervalSince1970 * 1000)
                    lag.record(max(0, now - job.dueAtMs))
                }
                if handled.add(1, ordering: .relaxed).newValue == expected { done.continuation.yield() }
                return .done
            }
        }
        let start = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await subscriber.run() }
            for consumer in consumers { group.addTask { try await consumer.run() } }
            try await produce()
            for await _ in done.stream { break }
            subscriber.shutdown()
            group.cancelAll()
        }
        return (Double(expected) / (ContinuousClock.now - start).seconds, ())
    }
}

/// A thread-safe HDR histogram of latencies, kept in microseconds.
final class LatencyRecorder: Sendable {
    private let histogram = Mutex(
        Histogram<UInt64>(highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three))

    func record(_ milliseconds: Int64) {
        self.record(microseconds: milliseconds * 1_000)
    }

    func record(microseconds: Int64) {
        self.histogram.withLock { _ = $0.record(UInt64(max(0, microseconds))) }
    }

    /// The value at `percentile` (100: the maximum), in whole milliseconds.
    func percentile(_ percentile: Double) -> Double {
        (self.percentileMs(percentile)).rounded(.down)
    }

    /// The value at `percentile` (100: the maximum), in milliseconds to two decimals.
    func percentileMs(_ percentile: Double) -> Double {
        let microseconds = self.histogram.withLock {
            percentile >= 100 ? Double($0.max) : Double($0.valueAtPercentile(percentile))
        }
        return (microseconds / 10).rounded() / 100
    }
}

extension Duration {
    var microseconds: Int64 {
        self.components.seconds * 1_000_000 + self.components.attoseconds / 1_000_000_000_000
    }

    var seconds: Double {
        Double(self.components.seconds) + Double(self.components.attoseconds) / 1e18
    }
}
