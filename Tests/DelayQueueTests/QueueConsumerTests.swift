import DelayQueue
import Foundation
import Logging
import NotifyCore
import NotifyTestSupport
import RedisClient
import ServiceLifecycle
import Synchronization
import Testing

/// Records what handlers saw, and lets a test await a number of handled jobs.
final class HandlerLog: Sendable {
    struct Entry: Sendable {
        var job: ClaimedJob
        var consumer: String
        var startedMs: Int64
        var endedMs: Int64?
    }

    private let entries = Mutex<[Entry]>([])
    private let progress = AsyncStream.makeStream(of: Int.self, bufferingPolicy: .bufferingNewest(1))

    static func nowMs() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    func started(_ job: ClaimedJob, by consumer: String) -> Int {
        self.entries.withLock { entries in
            entries.append(Entry(job: job, consumer: consumer, startedMs: Self.nowMs()))
            return entries.count - 1
        }
    }

    func ended(_ index: Int) {
        let count = self.entries.withLock { entries in
            entries[index].endedMs = Self.nowMs()
            return entries.count { $0.endedMs != nil }
        }
        self.progress.continuation.yield(count)
    }

    var all: [Entry] { self.entries.withLock { $0 } }

    /// Waits until `count` handlers ended, or fails after `seconds`.
    func waitForEnded(_ count: Int, seconds: Int = 20) async throws {
        if self.all.count(where: { $0.endedMs != nil }) >= count { return }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                // The count is read again on every wake-up: two handlers ending at once can yield their counts
                // out of order, and the stream keeps only the newest, so the yielded value may be the smaller.
                for await _ in self.progress.stream where self.all.count(where: { $0.endedMs != nil }) >= count {
                    return
                }
            }
            group.addTask {
                try await Task.sleep(for: .seconds(seconds))
                throw TimedOut(expected: count)
            }
            try await group.next()
            group.cancelAll()
        }
    }

    struct TimedOut: Error {
        let expected: Int
    }
}

/// A running subscriber for wake-ups, stopped after `body`.
func withConsumers(
    _ consumers: [QueueConsumer], subscriber: RedisSubscriber? = nil, _ body: () async throws -> Void
) async throws {
    try await withThrowingTaskGroup(of: Void.self) { group in
        if let subscriber { group.addTask { try await subscriber.run() } }
        for consumer in consumers { group.addTask { try await consumer.run() } }
        try await body()
        subscriber?.shutdown()
        group.cancelAll()
        // Consumers and the subscriber end normally when cancelled: an error here is a real failure.
        try await group.waitForAll()
    }
}

@Suite("Queue consumers", .timeLimit(.minutes(2)))
struct QueueConsumerTests {
    static let fast = DelayQueueConfiguration(
        leaseMs: 500, maxSleepMs: 100, heartbeatIntervalMs: 100, consumerTtlMs: 400)

    @Test("a full consumer runs at most maxConcurrentJobs and claims again in refills, not one claim per job")
    func refills() async throws {
        var configuration = Self.fast
        configuration.leaseMs = 10_000
        configuration.maxConcurrentJobs = 40  // refill: 10
        try await withQueue(configuration: configuration, shards: 16, manualClock: false) { queue, _, _, _ in
            let log = HandlerLog()
            let running = Mutex((now: 0, peak: 0))
            let consumer = QueueConsumer(queue: queue, subscriber: nil, id: "r", logger: testLogger("consumer")) {
                job, _ in
                let entry = log.started(job, by: "r")
                running.withLock {
                    $0.now += 1; $0.peak = max($0.peak, $0.now)
                }
                try? await Task.sleep(for: .milliseconds(5))  // the job's work
                running.withLock { $0.now -= 1 }
                log.ended(entry)
                return .done
            }
            let jobs = (0..<400).map { try! job("f\($0)", for: "user\($0 % 97)") }
            _ = try await queue.schedule(batch: jobs.map { ($0, 0) })
            try await withConsumers([consumer]) { try await log.waitForEnded(400) }
            #expect(running.withLock { $0.peak } <= 40)
            #expect(Set(log.all.map(\.job.id.description)).count == 400)
            // Jobs of one claim call share their shard and claim time: one call per freed slot would be ~360.
            let calls = Set(log.all.map { "\($0.job.shard)/\($0.job.claimedAtMs)" }).count
            #expect(calls <= 150, "\(calls) claim calls for 400 jobs")
        }
    }

    @Test("3 consumers x 3,000 jobs: every job is handled exactly once, and the shards are split among them")
    func exactlyOnce() async throws {
        // Leases far longer than a job takes, as in production: "exactly once" holds while no lease runs out.
        var configuration = Self.fast
        configuration.leaseMs = 10_000
        try await withQueue(configuration: configuration, shards: 16, manualClock: false) { queue, _, _, _ in
            let log = HandlerLog()
            let consumers = (0..<3).map { index in
                QueueConsumer(queue: queue, subscriber: nil, id: "c\(index)", logger: testLogger("consumer")) {
                    job, _ in
                    let entry = log.started(job, by: "c\(index)")
                    log.ended(entry)
                    return .done
                }
            }
            try await withConsumers(consumers) {
                for index in 0..<3_000 {
                    try await queue.schedule(try job("x\(index)", for: "user\(index % 211)"), inMs: 0)
                }
                try await log.waitForEnded(3_000)
                let owned = consumers.map { Set($0.ownedShards) }
                #expect(owned.reduce(0) { $0 + $1.count } == 16)
                #expect(owned[0].isDisjoint(with: owned[1]) && owned[1].isDisjoint(with: owned[2]))
            }
            let ids = log.all.map(\.job.id.description)
            #expect(ids.count == 3_000 && Set(ids).count == 3_000)
            #expect(Set(log.all.map(\.consumer)).count == 3)
            let stats = try await queue.stats().total
            #expect(stats.counters["acked"] == 3_000 && stats.inFlight == 0 && stats.dueNow == 0)
        }
    }

    @Test("a result that cannot be saved at once is saved later, under a kept lease: the job does not run twice")
    func settleRetries() async throws {
        var configuration = Self.fast
        configuration.leaseMs = 3_000  // outlives the pause below: the lease holds while the settle is retried
        try await withQueue(configuration: configuration, shards: 2, manualClock: false) { queue, _, client, server in
            let log = HandlerLog()
            // The consumer's own client gives up on a reply after 200 ms, so Redis pausing writes for longer makes
            // the settle fail (as a failover or a timeout would) while the job's work is done.
            let impatient = makeClient(for: server) { $0.commandTimeoutMs = 200 }
            let consumerQueue = DelayQueue(client: impatient, configuration: queue.configuration, shards: queue.shards)
            let consumer = QueueConsumer(
                queue: consumerQueue, subscriber: nil, id: "s", logger: testLogger("consumer")
            ) { job, _ in
                let entry = log.started(job, by: "s")
                do {
                    _ = try await client.send("CLIENT", "PAUSE", "1000", "WRITE").throwingIfError()
                } catch {
                    Issue.record("CLIENT PAUSE failed: \(error)")
                }
                log.ended(entry)
                return .done
            }
            try await queue.schedule(try job("s1"), inMs: 0)
            try await withConsumers([consumer]) {
                try await log.waitForEnded(1)
                // Finished once the result lands; before the fix it landed only after a second run (the lease
                // ran out while the failed settle was merely logged).
                let deadline = ContinuousClock.now + .seconds(20)
                while try await queue.stats().total.counters["acked"] != 1 {
                    #expect(ContinuousClock.now < deadline, "the job was never acked")
                    if ContinuousClock.now >= deadline { return }
                    try await Task.sleep(for: .milliseconds(50))
                }
            }
            #expect(log.all.count == 1, "the job ran \(log.all.count) times")
        }
    }

    @Test("a consumer that dies loses its shards to the others within seconds, and its jobs after the lease")
    func crashedConsumer() async throws {
        // The lease must outlast the time the doomed consumer needs to start its jobs, even on a loaded machine:
        // a live worker stuck past its lease would rightly see its own jobs again.
        var configuration = Self.fast
        configuration.leaseMs = 2_000
        try await withQueue(configuration: configuration, shards: 8, manualClock: false) { queue, _, _, server in
            let log = HandlerLog()
            // The doomed consumer has a client of its own: shutting it down is the crash (no more Redis for it).
            let doomedClient = makeClient(for: server)
            let doomedQueue = DelayQueue(client: doomedClient, configuration: queue.configuration, shards: queue.shards)
            let doomed = QueueConsumer(queue: doomedQueue, subscriber: nil, id: "doomed", logger: testLogger("doomed"))
            {
                job, _ in
                let entry = log.started(job, by: "doomed")
                try? await Task.sleep(for: .seconds(60))  // stuck in a send until it dies
                log.ended(entry)
                return .done
            }
            let survivor = QueueConsumer(queue: queue, subscriber: nil, id: "survivor", logger: testLogger("survivor"))
            {
                job, _ in
                log.ended(log.started(job, by: "survivor"))
                return .done
            }
            let doomedRun = Task { try await doomed.run() }
            try await withConsumers([survivor]) {
                // Both see each other: the shards are split, none owned twice.
                try await Self.waitUntil {
                    !doomed.ownedShards.isEmpty && !survivor.ownedShards.isEmpty
                        && doomed.ownedShards.count + survivor.ownedShards.count == 8
                }
                #expect(Set(doomed.ownedShards).isDisjoint(with: survivor.ownedShards))
                for index in 0..<40 {
                    try await queue.schedule(try job("j\(index)", for: "user\(index)"), inMs: 0)
                }
                try await Self.waitUntil { log.all.count == 40 }
                let held = log.all.filter { $0.consumer == "doomed" }.count
                #expect(held > 0, "the doomed consumer should hold some jobs when it dies")

                await doomedClient.shutdown()
                doomedRun.cancel()
                _ = try? await doomedRun.value
                let crashed = ContinuousClock.now
                try await Self.waitUntil { survivor.ownedShards.count == 8 }
                #expect(ContinuousClock.now - crashed < .seconds(2), "shards should move within the consumer TTL")
                try await log.waitForEnded(40 + held)
            }
            let entries = log.all
            let byDoomed = entries.filter { $0.consumer == "doomed" }
            let bySurvivor = entries.filter { $0.consumer == "survivor" }
            #expect(Set(bySurvivor.map(\.job.id)).count == 40, "every job ends up handled by the survivor")
            #expect(bySurvivor.count == 40, "and only once")
            for first in byDoomed {
                let retried = try #require(bySurvivor.first { $0.job.id == first.job.id })
                #expect(retried.job.attempt == 2)
                #expect(retried.startedMs >= (first.endedMs ?? .max), "job \(first.job.id) ran twice at once")
            }
        }
    }

    /// Waits for a condition that has no event to await (ownership, counts), polling briefly, up to 30 s (a
    /// deadline for failures only: a loaded machine running the whole suite in parallel needed more than 10 s).
    static func waitUntil(
        _ what: String = #function, line: Int = #line, _ condition: () async -> Bool
    ) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while !(await condition()) {
            guard ContinuousClock.now < deadline else { throw WaitTimedOut(what: "\(what) line \(line)") }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Waits (polling Redis, with a deadline) until `member`'s 1 s lease was pushed out past 2.5 original leases:
    /// without extensions it would have expired and been claimed again long before.
    static func waitUntilLeaseExtended(
        _ client: RedisClient, _ lease: RedisArgument, _ member: String, from first: Double, line: Int = #line
    ) async throws {
        try await Self.waitUntil(line: line) {
            let score = try? await client.send("ZSCORE", lease, .string(member)).double
            return (score ?? 0) > first + 2_500
        }
    }

    @Test("graceful shutdown stops claiming, lets running jobs finish and settle, and leaves the consumer set")
    func gracefulStop() async throws {
        try await withQueue(configuration: Self.fast, shards: 4, manualClock: false) { queue, _, client, _ in
            let log = HandlerLog()
            let started = AsyncStream.makeStream(of: Void.self)
            let consumer = QueueConsumer(queue: queue, subscriber: nil, id: "graceful", logger: testLogger("c")) {
                job, _ in
                let entry = log.started(job, by: "graceful")
                started.continuation.yield()
                try? await Task.sleep(for: .milliseconds(300))
                log.ended(entry)
                return .done
            }
            for index in 0..<5 {
                try await queue.schedule(try job("g\(index)", for: "user\(index)"), inMs: 0)
            }
            let group = ServiceGroup(
                configuration: ServiceGroupConfiguration(services: [consumer], logger: testLogger("group")))
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                var count = 0
                for await _ in started.stream {
                    count += 1
                    if count == 5 { break }
                }
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
            }
            #expect(log.all.allSatisfy { $0.endedMs != nil })
            let stats = try await queue.stats().total
            #expect(stats.counters["acked"] == 5 && stats.inFlight == 0)
            #expect(try await client.send("ZCARD", .string("\(queue.keys.prefix):consumers")) == .integer(0))
        }
    }

    @Test("a job cancelled while its handler works is not sent: mayProceed turns false before the gateway call")
    func cancelledWhileHandling() async throws {
        // The lease is not under test: a 500 ms lease can run out on a loaded machine, and the job's second claim
        // would then wait for a `proceed` that never comes.
        var configuration = Self.fast
        configuration.leaseMs = 10_000
        try await withQueue(configuration: configuration, shards: 4, manualClock: false) { queue, _, _, _ in
            let inHandler = AsyncStream.makeStream(of: Void.self)
            let proceed = AsyncStream.makeStream(of: Void.self)
            let runs = Mutex(0)
            // nil: mayProceed threw, which must fail the test rather than pass as "false".
            let decisions = AsyncStream.makeStream(of: Bool?.self)
            let consumer = QueueConsumer(queue: queue, subscriber: nil, id: "sender", logger: testLogger("c")) {
                _, control in
                let run = runs.withLock { runs -> Int in
                    runs += 1
                    return runs
                }
                if run == 1 {
                    inHandler.continuation.yield()
                    for await _ in proceed.stream { break }
                }
                do {
                    let mayProceed = try await control.mayProceed()
                    decisions.continuation.yield(mayProceed)
                    return mayProceed ? .done : .dropped
                } catch {
                    decisions.continuation.yield(nil)
                    return .retry(afterMs: nil, error: "\(error)")
                }
            }
            try await queue.schedule(try job("late-ack"), inMs: 0)
            try await withConsumers([consumer]) { () async throws in
                for await _ in inHandler.stream { break }
                #expect(try await queue.cancel(try JobID("late-ack/alice")) == .markedClaimed)
                proceed.continuation.yield()
                var iterator = decisions.stream.makeAsyncIterator()
                #expect(await iterator.next() == .some(false))
                try await Self.waitUntil { (try? await queue.stats().total.inFlight) == 0 }
            }
            // Dropped, so counted as cancelled: it was never sent.
            let counters = try await queue.stats().total.counters
            #expect(counters["cancelled"] == 1 && counters["acked"] == nil)
        }
    }

    @Test("a handler slower than several leases keeps its lease: the job is claimed once and settled once")
    func slowHandlerKeepsLease() async throws {
        var configuration = Self.fast
        configuration.leaseMs = 1_000
        try await withQueue(configuration: configuration, shards: 1, manualClock: false) { queue, _, client, _ in
            let inHandler = AsyncStream.makeStream(of: Void.self)
            let finish = AsyncStream.makeStream(of: Void.self)
            let log = HandlerLog()
            let consumer = QueueConsumer(queue: queue, subscriber: nil, id: "slow", logger: testLogger("c")) {
                job, _ in
                let entry = log.started(job, by: "slow")
                // A second claim of the job is the failure under test: it ends at once, and the count shows it.
                if entry == 0 {
                    inHandler.continuation.yield()
                    for await _ in finish.stream { break }
                }
                log.ended(entry)
                return .done
            }
            try await queue.schedule(try job("slow"), inMs: 0)
            try await withConsumers([consumer]) { () async throws in
                for await _ in inHandler.stream { break }
                let lease = queue.shardKeys(0)[2]
                let first = try #require(try await client.send("ZSCORE", lease, "slow/alice").double)
                try await Self.waitUntilLeaseExtended(client, lease, "slow/alice", from: first)
                finish.continuation.yield()
                try await log.waitForEnded(log.all.count)
                try await Self.waitUntil { (try? await queue.stats().total.inFlight) == 0 }
            }
            #expect(log.all.count == 1)
            let counters = try await queue.stats().total.counters
            #expect(counters["claimed"] == 1 && counters["acked"] == 1 && counters["expiredLeases"] == nil)
        }
    }

    @Test("slow jobs of two shards with the same lease token both keep their leases (leases are keyed by shard too)")
    func sameTokenInTwoShards() async throws {
        var configuration = Self.fast
        configuration.leaseMs = 1_000
        try await withQueue(configuration: configuration, shards: 2, manualClock: false) { queue, _, client, _ in
            // One user per shard: each shard's first claim gets lease token 1, so the two jobs share a token.
            let users = usersInDistinctShards(2, of: queue, prefix: "u")
            let inHandler = AsyncStream.makeStream(of: Void.self)
            let finish = AsyncStream.makeStream(of: Void.self)
            let log = HandlerLog()
            let consumer = QueueConsumer(queue: queue, subscriber: nil, id: "slow", logger: testLogger("c")) {
                job, _ in
                let entry = log.started(job, by: "slow")
                // A second claim of a job is the failure under test: it ends at once, and the count shows it.
                if entry < 2 {
                    inHandler.continuation.yield()
                    for await _ in finish.stream { break }
                }
                log.ended(entry)
                return .done
            }
            for user in users {
                try await queue.schedule(try job("slow", for: user), inMs: 0)
            }
            try await withConsumers([consumer]) { () async throws in
                var started = 0
                for await _ in inHandler.stream {
                    started += 1
                    if started == 2 { break }
                }
                var firsts: [(RedisArgument, String, Double)] = []
                for user in users {
                    let lease = queue.shardKeys(queue.shards.shard(of: user))[2]
                    let member = "slow/\(user)"
                    firsts.append(
                        (lease, member, try #require(try await client.send("ZSCORE", lease, .string(member)).double)))
                }
                for (lease, member, first) in firsts {
                    try await Self.waitUntilLeaseExtended(client, lease, member, from: first)
                }
                finish.continuation.finish()
                try await log.waitForEnded(log.all.count)
                try await Self.waitUntil { (try? await queue.stats().total.inFlight) == 0 }
            }
            #expect(log.all.count == 2)
            let counters = try await queue.stats().total.counters
            #expect(counters["claimed"] == 2 && counters["acked"] == 2 && counters["expiredLeases"] == nil)
        }
    }
}

struct WaitTimedOut: Error, CustomStringConvertible {
    let what: String
    var description: String { "timed out waiting (\(self.what))" }
}
