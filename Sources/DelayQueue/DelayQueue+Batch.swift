import NIOCore
import NotifyCore
import RedisClient

extension DelayQueue {
    /// Most jobs handed to one script call: bounds how long one call holds Redis' thread.
    static let jobsPerCall = 256

    /// Schedules many jobs: grouped by shard, one script call per group (each call atomic), all calls pipelined
    /// in one round trip. Outcomes come back in the order of `jobs`.
    public func schedule(batch jobs: [(job: QueueJob, delayMs: Int)]) async throws -> [ScheduleOutcome] {
        for (job, delayMs) in jobs {
            try self.validate(delayMs: delayMs)
            try self.validatePayload(job.payload)
        }
        return try await self.scheduleValidated(jobs.map { ($0.job, "in", Int64($0.delayMs)) })
    }

    func scheduleValidated(_ jobs: [(job: QueueJob, mode: String, value: Int64)]) async throws -> [ScheduleOutcome] {
        let groups = self.groupByShard(jobs.indices.map { ($0, jobs[$0].job.id.userID) })
        let calls = groups.map { group in
            var keys = self.keys.shardKeys(group.shard)
            var arguments: [RedisArgument] = [
                .string(self.clock.argument), .integer(self.configuration.jobGuardMs),
                .string(self.keys.wakeChannel), .integer(group.shard), .integer(self.configuration.maxSleepMs),
                .integer(self.configuration.maxPendingPerUser),
            ]
            for index in group.indices {
                let (job, mode, value) = jobs[index]
                if job.eventID != nil {
                    keys.append(self.keys.pending(shard: group.shard, userID: job.id.userID))
                }
                arguments += [
                    .string(job.id.description), .bytes(job.payload), .string(mode), .integer(Int(value)),
                    .string(job.eventID.map { Self.scoreText($0) } ?? ""),
                ]
            }
            return RedisScriptCall(keys: keys, arguments: arguments)
        }
        let replies = try await self.client.eval(self.scripts.schedule, batch: calls)
        var outcomes = [ScheduleOutcome](repeating: .duplicate, count: jobs.count)
        for (group, reply) in zip(groups, replies) {
            guard let values = try reply.throwingIfError().array, values.count == group.indices.count else {
                throw DelayQueueError(.unexpectedReply, "schedule returned \(reply.kindDescription)")
            }
            for (index, value) in zip(group.indices, values) {
                guard let due = value.int else {
                    throw DelayQueueError(.unexpectedReply, "schedule returned \(value.kindDescription)")
                }
                outcomes[index] =
                    switch due {
                    case 0...: .scheduled(dueAtMs: Int64(due))
                    case -2: .limited
                    default: .duplicate
                    }
            }
        }
        return outcomes
    }

    /// Cancels many jobs: grouped by shard, one script call per group, pipelined. Outcomes in the order of `ids`.
    public func cancel(batch ids: [JobID]) async throws -> [CancelOutcome] {
        let groups = self.groupByShard(ids.indices.map { ($0, ids[$0].userID) })
        let calls = groups.map { group in
            var keys = self.keys.shardKeys(group.shard)
            var arguments: [RedisArgument] = [
                .string(self.clock.argument), .integer(self.configuration.doneRetentionMs),
            ]
            for index in group.indices {
                keys.append(self.keys.pending(shard: group.shard, userID: ids[index].userID))
                arguments.append(.string(ids[index].description))
            }
            return RedisScriptCall(keys: keys, arguments: arguments)
        }
        let replies = try await self.client.eval(self.scripts.cancel, batch: calls)
        var outcomes = [CancelOutcome](repeating: .unknown, count: ids.count)
        for (group, reply) in zip(groups, replies) {
            guard let values = try reply.throwingIfError().array, values.count == group.indices.count else {
                throw DelayQueueError(.unexpectedReply, "cancel returned \(reply.kindDescription)")
            }
            for (index, value) in zip(group.indices, values) {
                switch value.string {
                case "cancelled": outcomes[index] = .cancelled
                case "marked": outcomes[index] = .markedClaimed
                case "done": outcomes[index] = .alreadyDone
                case "unknown": outcomes[index] = .unknown
                default: throw DelayQueueError(.unexpectedReply, "cancel returned \(value.kindDescription)")
                }
            }
        }
        return outcomes
    }

    /// Positions grouped by their user's shard, in chunks of at most ``jobsPerCall``.
    private func groupByShard(_ items: [(index: Int, userID: String)]) -> [(shard: Int, indices: [Int])] {
        var byShard: [Int: [Int]] = [:]
        for item in items {
            byShard[self.shards.shard(of: item.userID), default: []].append(item.index)
        }
        return byShard.sorted { $0.key < $1.key }.flatMap { shard, indices in
            stride(from: 0, to: indices.count, by: Self.jobsPerCall).map {
                (shard, Array(indices[$0..<min($0 + Self.jobsPerCall, indices.count)]))
            }
        }
    }
}
