import NIOCore
import NotifyCore
import RedisClient

/// How to settle a claimed job.
public enum SettleAction: Sendable, Hashable {
    /// Delivered: the job is finished.
    case ack
    /// Not sent because it was cancelled after its claim (``DelayQueue/mayProceed(_:)`` said no): finished, and
    /// counted as cancelled.
    case drop
    /// Failed for now: try again after the delay (at most ``DelayQueueConfiguration/maxDelayMs``), unless it was
    /// the last attempt.
    case retry(afterMs: Int, error: String)
    /// Can never succeed: straight to the dead letters.
    case deadLetter(error: String)
    /// Not started (graceful stop): due again at once, the attempt does not count.
    case release
    /// Not started on purpose (quiet hours, a gateway's open circuit breaker): due again after the delay (at
    /// most ``DelayQueueConfiguration/maxDelayMs``), the attempt does not count, and an ack still cancels it.
    case deferral(afterMs: Int)
    /// Still working: extend the lease by the configured lease time.
    case extendLease

    fileprivate var arguments: (action: String, milliseconds: Int, error: String) {
        switch self {
        case .ack: ("ack", 0, "")
        case .drop: ("drop", 0, "")
        case .retry(let afterMs, let error): ("retry", afterMs, String(error.prefix(1_000)))
        case .deadLetter(let error): ("dead", 0, String(error.prefix(1_000)))
        case .release: ("release", 0, "")
        case .deferral(let afterMs): ("release", afterMs, "")
        case .extendLease: ("extend", 0, "")
        }
    }
}

extension DelayQueue {
    /// Settles many claimed jobs: grouped by shard, one script call per group, pipelined. Outcomes in input order;
    /// throws the first failure (see ``settleEach(batch:)`` for each entry's own).
    public func settle(batch settlements: [(job: ClaimedJob, action: SettleAction)]) async throws -> [SettleOutcome] {
        try await self.settleEach(batch: settlements).map { try $0.get() }
    }

    /// As ``settle(batch:)``, with each entry's own result: a script error on one job's keys fails that job only.
    /// Throws when the pipeline itself failed (a timeout, a lost connection), where no entry can tell whether it
    /// was applied.
    ///
    /// A script error aborts its call partway (Redis does not roll back): the group's jobs before the bad one were
    /// applied, the rest not. So a group that fails is settled again one job per call; jobs already applied then
    /// answer `stale` for their token, which means settled.
    public func settleEach(
        batch settlements: [(job: ClaimedJob, action: SettleAction)]
    ) async throws -> [Result<SettleOutcome, any Error>] {
        var byShard: [Int: [Int]] = [:]
        for (index, settlement) in settlements.enumerated() {
            byShard[settlement.job.shard, default: []].append(index)
        }
        let groups = byShard.sorted { $0.key < $1.key }.flatMap { shard, indices in
            stride(from: 0, to: indices.count, by: Self.jobsPerCall).map {
                (shard: shard, indices: Array(indices[$0..<min($0 + Self.jobsPerCall, indices.count)]))
            }
        }
        var outcomes = try await self.settle(settlements, in: groups)
        let failedTogether = groups.filter { $0.indices.count > 1 && (try? outcomes[$0.indices[0]].get()) == nil }
        if !failedTogether.isEmpty {
            let alone = failedTogether.flatMap { group in group.indices.map { (shard: group.shard, indices: [$0]) } }
            let again = try await self.settle(settlements, in: alone)
            for group in alone { outcomes[group.indices[0]] = again[group.indices[0]] }
        }
        return outcomes
    }

    /// One script call per group, pipelined; the results of the entries in `groups`, by index into `settlements`
    /// (entries in no group are left as failures).
    private func settle(
        _ settlements: [(job: ClaimedJob, action: SettleAction)], in groups: [(shard: Int, indices: [Int])]
    ) async throws -> [Result<SettleOutcome, any Error>] {
        let calls = groups.map { group in
            var keys = self.keys.shardKeys(group.shard)
            var arguments: [RedisArgument] = [
                .string(self.clock.argument), .integer(self.configuration.maxAttempts),
                .integer(self.configuration.doneRetentionMs), .integer(self.configuration.jobGuardMs),
            ]
            for index in group.indices {
                let (job, action) = settlements[index]
                var (name, milliseconds, error) = action.arguments
                if case .extendLease = action { milliseconds = self.configuration.leaseMs }
                // A gateway's Retry-After is honoured up to the longest delay the queue takes at all; the script
                // keeps the job's guards alive past the wait.
                switch action {
                case .retry, .deferral: milliseconds = min(max(0, milliseconds), self.configuration.maxDelayMs)
                default: break
                }
                keys += self.guardKeys(of: job.id, shard: group.shard)
                arguments += [
                    .string(job.id.description), .string(job.leaseToken), .string(name), .integer(milliseconds),
                    .string(error),
                ]
            }
            return RedisScriptCall(keys: keys, arguments: arguments)
        }
        let replies = try await self.client.eval(self.scripts.settle, batch: calls)
        guard replies.count == groups.count else {
            throw DelayQueueError(.unexpectedReply, "settle got \(replies.count) replies for \(groups.count) calls")
        }
        var outcomes = [Result<SettleOutcome, any Error>](
            repeating: .failure(DelayQueueError(.unexpectedReply, "not settled")), count: settlements.count)
        for (group, reply) in zip(groups, replies) {
            do {
                guard let values = try reply.throwingIfError().array, values.count == group.indices.count else {
                    throw DelayQueueError(.unexpectedReply, "settle returned \(reply.kindDescription)")
                }
                for (index, value) in zip(group.indices, values) {
                    guard let text = value.string, let outcome = SettleOutcome(rawValue: text) else {
                        throw DelayQueueError(.unexpectedReply, "settle returned \(value.kindDescription)")
                    }
                    outcomes[index] = .success(outcome)
                }
            } catch {
                for index in group.indices { outcomes[index] = .failure(error) }
            }
        }
        return outcomes
    }
}
