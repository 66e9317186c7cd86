import Foundation
import RedisClient

/// The queue's Lua scripts, read from the package's `Scripts/*.lua` with the shared prelude prepended.
struct QueueScripts: Sendable {
    let schedule: RedisScript
    let cancel: RedisScript
    let cancelUpTo: RedisScript
    let claim: RedisScript
    let settle: RedisScript
    let replay: RedisScript
    let stats: RedisScript
    let heartbeat: RedisScript
    let trim: RedisScript
    let trimDead: RedisScript

    /// Loaded once per process.
    static let shared: QueueScripts = {
        do {
            return try QueueScripts()
        } catch {
            fatalError("the delay queue's Lua scripts are missing from the package resources: \(error)")
        }
    }()

    private init() throws {
        let prelude = try Self.source("common")
        let lifecycle = try Self.source("lifecycle")
        let scheduling = try Self.source("scheduling")
        func script(_ name: String, finishesJobs: Bool = false, schedules: Bool = false) throws -> RedisScript {
            RedisScript(
                prelude + (finishesJobs ? lifecycle : "") + (schedules ? scheduling : "") + (try Self.source(name)))
        }
        self.schedule = try script("schedule", schedules: true)
        self.cancel = try script("cancel", finishesJobs: true)
        self.cancelUpTo = try script("cancel_up_to", finishesJobs: true)
        self.claim = try script("claim", finishesJobs: true)
        self.settle = try script("settle", finishesJobs: true, schedules: true)
        self.replay = try script("replay", schedules: true)
        self.stats = try script("stats")
        self.heartbeat = try script("heartbeat")
        self.trim = try script("trim")
        self.trimDead = try script("trim_dead", finishesJobs: true)
    }

    var all: [RedisScript] {
        [
            self.schedule, self.cancel, self.cancelUpTo, self.claim, self.settle, self.replay, self.stats,
            self.heartbeat,
            self.trim, self.trimDead,
        ]
    }

    /// The Lua prelude (shard keys, clock, counters) and helpers that scripts of other parts embed to change
    /// jobs inside their own atomic step: `schedule_job`, `wake_if_leading`, `cancel_job`, `count_cancels`.
    static let embeddablePrelude: String = {
        do {
            return try ["common", "lifecycle", "scheduling"].map(Self.source).joined()
        } catch {
            fatalError("the delay queue's Lua scripts are missing from the package resources: \(error)")
        }
    }()

    static func source(_ name: String) throws -> String {
        guard let url = Bundle.module.url(forResource: name, withExtension: "lua", subdirectory: "Scripts") else {
            throw DelayQueueError(.unexpectedReply, "script \(name).lua not found")
        }
        return try String(contentsOf: url, encoding: .utf8)
    }
}
