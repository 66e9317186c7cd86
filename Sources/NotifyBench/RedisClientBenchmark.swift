import Foundation
import Logging
import RedisClient

/// `notify bench redis`: the same commands through ``RedisClient`` and through `redis-benchmark`, at several
/// pipeline depths, on one server in one run.
///
/// Both sides use the same number of connections, each with `depth` commands in flight: our workers send batches
/// of `depth` commands (single sends at depth 1) and await the replies, as `redis-benchmark -P depth` does.
public struct RedisClientBenchmark: Sendable {
    /// What to run.
    public struct Options: Sendable {
        public var connections = 4
        public var requests = 200_000
        public var depths = [1, 16, 128]
        public var runs = 3

        public init() {}
    }

    /// One row of the report: medians over the runs.
    public struct Row: Sendable {
        public var command: String
        public var depth: Int
        public var ours: Double
        public var peer: Double
    }

    /// A small script, for the EVALSHA rows: one ZADD, as the delay queue's scripts do at their core.
    static let script = RedisScript("return redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])")

    private let url: RedisURL
    private let options: Options
    private let logger: Logger

    public init(url: RedisURL, options: Options, logger: Logger) {
        self.url = url
        self.options = options
        self.logger = logger
    }

    /// Runs every depth and command `options.runs` times, alternating ours and the peer, and returns the medians.
    public func run(progress: (String) -> Void) async throws -> [Row] {
        let tool = RedisBenchmarkTool(
            url: self.url, connections: self.options.connections, requests: self.options.requests)
        return try await RedisClient(configuration: RedisClientConfiguration(url: self.url), logger: self.logger)
            .closing { try await self.measureAll(admin: $0, tool: tool, progress: progress) }
    }

    private func measureAll(admin: RedisClient, tool: RedisBenchmarkTool, progress: (String) -> Void) async throws
        -> [Row]
    {
        var rows: [Row] = []
        for depth in self.options.depths {
            for command in ["ZADD", "EVALSHA"] {
                var ours: [Double] = []
                var peer: [Double] = []
                for run in 1...self.options.runs {
                    try await admin.send("FLUSHALL")
                    try await admin.load(Self.script)
                    ours.append(try await self.measureOurs(command: command, depth: depth))
                    try await admin.send("FLUSHALL")
                    try await admin.load(Self.script)
                    peer.append(try tool.run(depth: depth, command: Self.peerCommand(command)))
                    progress(
                        "  \(command) depth \(depth) run \(run): ours \(Int(ours.last!)) ops/s, "
                            + "redis-benchmark \(Int(peer.last!)) ops/s")
                }
                rows.append(Row(command: command, depth: depth, ours: median(ours), peer: median(peer)))
            }
        }
        return rows
    }

    private static func peerCommand(_ command: String) -> [String] {
        switch command {
        case "ZADD": ["zadd", "bench:z", "__rand_int__", "m:__rand_int__"]
        default: ["evalsha", Self.script.sha1, "1", "bench:z", "__rand_int__", "m:__rand_int__"]
        }
    }

    private func measureOurs(command: String, depth: Int) async throws -> Double {
        let connections = self.options.connections
        let client = RedisClient(
            configuration: RedisClientConfiguration(
                url: self.url, maxConnections: connections, maxInFlightPerConnection: depth),
            logger: self.logger)
        // Open every connection before timing: the pool grows only while its connections are busy.
        try await self.drive(client: client, command: command, depth: depth, perWorker: max(depth, 1_000), tag: "w")
        let perWorker = self.options.requests / connections
        let start = ContinuousClock.now
        try await self.drive(client: client, command: command, depth: depth, perWorker: perWorker, tag: "m")
        let elapsed = ContinuousClock.now - start
        await client.shutdown()
        return Double(perWorker * connections) / elapsed.seconds
    }

    private func drive(client: RedisClient, command: String, depth: Int, perWorker: Int, tag: String) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<self.options.connections {
                group.addTask {
                    var sent = 0
                    while sent < perWorker {
                        let count = min(depth, perWorker - sent)
                        try await Self.send(
                            client: client, command: command, worker: worker, first: sent, count: count, tag: tag)
                        sent += count
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    /// Sends `count` commands with random scores and members, like redis-benchmark's `__rand_int__` (random
    /// positions in the sorted set cost Redis more than appending in score order would).
    private static func send(
        client: RedisClient, command: String, worker: Int, first: Int, count: Int, tag: String
    ) async throws {
        let key: RedisArgument = "bench:z"
        var random = SplitMix64(seed: UInt64(worker) &* 0x9E37_79B9 &+ UInt64(first))
        let pairs = (0..<count).map { _ in
            let value = Int(random.next() % 100_000_000)
            return (score: RedisArgument.integer(value), member: RedisArgument.string("m:\(tag)\(value)"))
        }
        if command == "ZADD" {
            if count == 1 {
                try await client.send("ZADD", key, pairs[0].score, pairs[0].member)
            } else {
                _ = try await client.send(batch: pairs.map { RedisCommand("ZADD", key, $0.score, $0.member) })
            }
        } else {
            if count == 1 {
                try await client.eval(Self.script, keys: [key], arguments: [pairs[0].score, pairs[0].member])
            } else {
                let calls = pairs.map { RedisScriptCall(keys: [key], arguments: [$0.score, $0.member]) }
                _ = try await client.eval(Self.script, batch: calls)
            }
        }
    }
}

/// A small, fast pseudo-random generator for benchmark data.
struct SplitMix64 {
    private var state: UInt64

    init(seed: UInt64) {
        self.state = seed
    }

    mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var value = self.state
        value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
        value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
        return value ^ (value >> 31)
    }
}
