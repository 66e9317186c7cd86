import ArgumentParser
import Configuration
import DelayQueue
import Foundation
import Logging
import NotifyCore
import RedisClient

/// `notify queue …`: look at and steer the delay queues.
struct QueueCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "queue",
        abstract: "Inspect and operate the delay queues (uses NOTIFY_REDIS_URL, else the running notify dev's Redis).",
        subcommands: [
            QueueStatsCommand.self, QueuePeekCommand.self, QueueDeadCommand.self, QueueReplayCommand.self,
            QueueCancelCommand.self,
        ]
    )
}

/// The queue of the configured deployment, for one ops command.
struct QueueSession {
    let queue: DelayQueue
    let client: RedisClient

    static func open(_ options: GlobalOptions) async throws -> QueueSession {
        let setup = try await ProcessSetup.bootstrap(options, part: "queue", defaultLogLevel: "notice")
        let provision = try await RedisProvision.resolve(
            config: setup.config, startLocalIfUnset: false, preferDevServer: true, logger: setup.logger)
        let client = RedisClient(configuration: provision.configuration, logger: setup.logger)
        let queue = DelayQueue(
            client: client, configuration: DelayQueueConfiguration(config: setup.config.scoped(to: "delayQueue")),
            shards: try ShardMap(config: setup.config))
        return QueueSession(queue: queue, client: client)
    }

    /// Runs `body` and closes the session, also when `body` throws.
    static func with(_ options: GlobalOptions, _ body: (DelayQueue) async throws -> Void) async throws {
        let session = try await Self.open(options)
        try await session.client.closing { _ in try await body(session.queue) }
    }
}

struct QueueStatsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stats", abstract: "Queue depth, lag and counters.")
    @OptionGroup var options: GlobalOptions
    @Flag(help: "Print JSON instead of a table.") var json = false
    @Flag(help: "List every shard, not only the busy ones.") var all = false

    func run() async throws {
        try await QueueSession.with(self.options) { queue in
            let (total, shards) = try await queue.stats()
            if self.json {
                let document = QueueStatsDocument(total: total, shards: shards)
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try encoder.encode(document), as: UTF8.self))
                return
            }
            let header = ["shard", "due now", "later", "lag ms", "in flight", "expired", "dead"]
            var rows: [[String]] = []
            for (shard, stats) in shards.enumerated() where self.all || stats.isBusy {
                rows.append([String(shard)] + stats.columns)
            }
            rows.append(["total"] + total.columns)
            print(TextTable(header: header, rows: rows).rendered)
            let counters = total.counters.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
            print("counters: " + (counters.isEmpty ? "none yet" : counters.joined(separator: " ")))
        }
    }
}

extension QueueStats {
    fileprivate var isBusy: Bool { self.dueNow + self.scheduledLater + self.inFlight + self.dead > 0 }

    fileprivate var columns: [String] {
        [self.dueNow, self.scheduledLater, Int(self.oldestOverdueLagMs), self.inFlight, self.expiredLeases, self.dead]
            .map(String.init)
    }
}

struct QueuePeekCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "peek", abstract: "The next waiting jobs.")
    @OptionGroup var options: GlobalOptions
    @Option(help: "Only this shard.") var shard: Int?
    @Option(help: "How many.") var limit = 20

    func run() async throws {
        try await QueueSession.with(self.options) { queue in
            let entries = try await queue.peek(shard: self.shard, limit: self.limit)
            print(
                TextTable(
                    header: ["job", "shard", "due", "payload bytes"],
                    rows: entries.map { [$0.id, String($0.shard), Self.time($0.atMs), String($0.payloadBytes)] }
                ).rendered)
        }
    }

    static func time(_ ms: Int64) -> String {
        ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
    }
}

struct QueueDeadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dead", abstract: "Dead letters with their last error.")
    @OptionGroup var options: GlobalOptions
    @Option(help: "Only this shard.") var shard: Int?
    @Option(help: "How many.") var limit = 20

    func run() async throws {
        try await QueueSession.with(self.options) { queue in
            let entries = try await queue.deadLetters(shard: self.shard, limit: self.limit)
            print(
                TextTable(
                    header: ["job", "shard", "died", "error"],
                    rows: entries.map { [$0.id, String($0.shard), QueuePeekCommand.time($0.atMs), $0.error ?? ""] }
                ).rendered)
        }
    }
}

struct QueueReplayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay", abstract: "Send dead letters again (one job id, or --all).")
    @OptionGroup var options: GlobalOptions
    @Argument(help: "Job id, <notificationID>/<userID>.") var jobID: String?
    @Flag(help: "Replay every dead letter.") var all = false

    func validate() throws {
        guard (self.jobID != nil) != self.all else { throw ValidationError("give a job id or --all, not both") }
    }

    func run() async throws {
        try await QueueSession.with(self.options) { queue in
            if let jobID {
                guard try await queue.replay(try JobID(jobID)) else {
                    throw ValidationError("\(jobID) is not a dead letter")
                }
                print("replayed \(jobID)")
            } else {
                print("replayed \(try await queue.replayAll()) dead letters")
            }
        }
    }
}

struct QueueCancelCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cancel", abstract: "Cancel one push job.")
    @OptionGroup var options: GlobalOptions
    @Argument(help: "Job id, <notificationID>/<userID>.") var jobID: String

    func run() async throws {
        try await QueueSession.with(self.options) { queue in
            let outcome = try await queue.cancel(try JobID(self.jobID))
            print("\(self.jobID): \(outcome.rawValue)")
        }
    }
}
