import DelayQueue
import Foundation
import NIOCore
import NotifyCore
import NotifyTestSupport
import PropertyBased
import RedisClient
import Testing

/// A plain in-memory model of the queue's rules, to compare the Lua scripts against.
struct QueueModel {
    enum State: Equatable {
        case waiting(due: Int64)
        case leased(deadline: Int64, token: Int, cancelled: Bool)
        case dead
        case done
    }

    struct Job {
        var state: State
        var attempts = 0
    }

    let leaseMs: Int64
    let maxAttempts: Int
    var now: Int64
    var jobs: [String: Job] = [:]
    var counters: [String: Int] = [:]
    var leaseSeq = 0

    mutating func count(_ name: String, _ by: Int = 1) { self.counters[name, default: 0] += by }

    mutating func schedule(_ id: String, delay: Int64) -> Bool {
        if self.jobs[id] != nil {
            self.count("duplicates")
            return false
        }
        self.jobs[id] = Job(state: .waiting(due: self.now + delay))
        self.count("scheduled")
        return true
    }

    mutating func cancel(_ id: String) -> CancelOutcome {
        guard let job = self.jobs[id] else { return .unknown }
        switch job.state {
        case .waiting, .dead:
            self.jobs[id] = Job(state: .done)
            self.count("cancelled")
            return .cancelled
        case .leased(let deadline, let token, _):
            self.jobs[id]!.state = .leased(deadline: deadline, token: token, cancelled: true)
            self.count("cancelMarked")
            return .markedClaimed
        case .done:
            return .alreadyDone
        }
    }

    mutating func claim(max: Int) -> [String] {
        let expired = self.jobs.compactMap { id, job -> (Int64, String)? in
            if case .leased(let deadline, _, _) = job.state, deadline <= self.now { return (deadline, id) }
            return nil
        }.sorted { $0 < $1 }.prefix(max)
        for (_, id) in expired {
            self.count("expiredLeases")
            guard case .leased(_, _, let cancelled) = self.jobs[id]!.state else { continue }
            if cancelled {
                self.jobs[id] = Job(state: .done)
                self.count("cancelled")
            } else if self.jobs[id]!.attempts >= self.maxAttempts {
                self.jobs[id]!.state = .dead
                self.count("dead")
            } else {
                self.jobs[id]!.state = .waiting(due: self.now)
            }
        }
        let due = self.jobs.compactMap { id, job -> (Int64, String)? in
            if case .waiting(let at) = job.state, at <= self.now { return (at, id) }
            return nil
        }.sorted { $0 < $1 }.prefix(max)
        for (_, id) in due {
            self.jobs[id]!.attempts += 1
            self.leaseSeq += 1
            self.jobs[id]!.state = .leased(deadline: self.now + self.leaseMs, token: self.leaseSeq, cancelled: false)
        }
        if !due.isEmpty { self.count("claimed", due.count) }
        return due.map(\.1)
    }

    mutating func settle(_ id: String, token: Int, retryDelay: Int64?) -> SettleOutcome {
        guard case .leased(_, let current, let cancelled) = self.jobs[id]?.state, current == token else {
            self.count("staleSettles")
            return .stale
        }
        guard let retryDelay else {
            self.jobs[id] = Job(state: .done)
            self.count("acked")
            return .acked
        }
        if cancelled {
            self.jobs[id] = Job(state: .done)
            self.count("cancelled")
            return .cancelled
        }
        if self.jobs[id]!.attempts >= self.maxAttempts {
            self.jobs[id]!.state = .dead
            self.count("dead")
            return .dead
        }
        self.jobs[id]!.state = .waiting(due: self.now + retryDelay)
        self.count("retried")
        return .retried
    }

    var stats: (dueNow: Int, later: Int, inFlight: Int, dead: Int) {
        var result = (dueNow: 0, later: 0, inFlight: 0, dead: 0)
        for job in self.jobs.values {
            switch job.state {
            case .waiting(let due): if due <= self.now { result.dueNow += 1 } else { result.later += 1 }
            case .leased: result.inFlight += 1
            case .dead: result.dead += 1
            case .done: break
            }
        }
        return result
    }
}

@Suite("Queue against a model", .timeLimit(.minutes(3)))
struct QueueModelTests {
    @Test("random sequences of schedule, cancel, claim, ack, retry and time passing match the model")
    func matchesModel() async throws {
        try await withRedisClient { client, _ in
            await propertyCheck(count: 200, input: Gen.int(in: 0...999_999).array(of: 1...60)) { codes in
                do {
                    try await Self.run(codes, client: client)
                } catch {
                    Issue.record("operation failed: \(error)")
                }
            }
        }
    }

    static func run(_ codes: [Int], client: RedisClient) async throws {
        let clock = ManualQueueClock()
        let configuration = DelayQueueConfiguration(
            keyPrefix: "m\(UUID().uuidString.prefix(8))", leaseMs: 1_000, maxAttempts: 3)
        let queue = DelayQueue(
            client: client, configuration: configuration, shards: ShardMap(count: 1), clock: .manual(clock))
        var model = QueueModel(leaseMs: 1_000, maxAttempts: 3, now: clock.nowMs)
        var held: [ClaimedJob] = []
        for code in codes {
            // Claims and retries are drawn more often than acks, so jobs reach their last attempt.
            let parameter = code / 8
            let id = "j\(parameter % 4)"
            switch code % 8 {
            case 0:
                let delay = Int64(parameter % 3_000)
                let real = try await queue.schedule(
                    QueueJob(id: try JobID(notificationID: id, userID: "u"), payload: ByteBuffer(string: "p")),
                    inMs: Int(delay))
                let expected = model.schedule(id, delay: delay)
                #expect((real != .duplicate) == expected, "schedule \(id)")
            case 1:
                #expect(
                    try await queue.cancel(try JobID(notificationID: id, userID: "u")) == model.cancel(id),
                    "cancel \(id)")
            case 2, 3:
                let max = 1 + parameter % 3
                let claimed = try await queue.claim(shard: 0, max: max).jobs
                #expect(claimed.map(\.id.notificationID) == model.claim(max: max), "claim \(max)")
                held += claimed
            case 4, 5, 6:
                guard !held.isEmpty else { continue }
                let job = held[parameter % held.count]
                let delay: Int64? = code % 8 == 4 ? nil : Int64(parameter % 2_000)
                let real =
                    if let delay {
                        try await queue.retry(job, afterMs: Int(delay), error: "e")
                    } else {
                        try await queue.ack(job)
                    }
                let expected = model.settle(job.id.notificationID, token: Int(job.leaseToken) ?? -1, retryDelay: delay)
                #expect(real == expected, "settle \(job.id) with delay \(String(describing: delay))")
            default:
                let step = Int64(parameter % 2_000)
                clock.advance(byMs: step)
                model.now += step
            }
            let stats = try await queue.stats(shard: 0)
            let expected = model.stats
            #expect(stats.dueNow == expected.dueNow && stats.scheduledLater == expected.later)
            #expect(stats.inFlight == expected.inFlight && stats.dead == expected.dead)
            #expect(stats.counters == model.counters)
        }
    }
}
