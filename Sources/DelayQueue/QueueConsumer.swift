import Foundation
import Logging
import Metrics
import NIOCore
import NotifyCore
import RedisClient
import ServiceLifecycle
import Synchronization

/// Claims due jobs from the shards this consumer owns and runs them through a handler with bounded concurrency.
///
/// Shards are divided among live consumers (heartbeats with a TTL in Redis, rendezvous hashing); a consumer that
/// dies loses its shards within ``DelayQueueConfiguration/consumerTtlMs`` and its claimed jobs when their leases
/// expire. The loop sleeps until the earliest due time among its shards (at most
/// ``DelayQueueConfiguration/maxSleepMs``) and is woken early when a schedule makes an earlier job the head of a
/// shard, so an idle queue costs about one pipelined claim per consumer per `maxSleepMs`.
///
/// On graceful shutdown it stops claiming, lets running jobs finish and settle, and leaves the consumer set so
/// the others take its shards at once.
public final class QueueConsumer: Service, Sendable {
    private struct State {
        var owned: [Int] = []
        /// Shards a wake-up named since the last claim (a new job became their head).
        var woken: Set<Int> = []
        var running = 0
        /// Claimed jobs not settled yet, by lease token (a job claimed again after losing its lease has a new
        /// one), with when their lease ends at the latest by our clock (for the lease keeper).
        /// Jobs running, by shard and lease token (tokens count per shard, so two shards may hand out the same).
        var leased: [String: (job: ClaimedJob, deadline: ContinuousClock.Instant)] = [:]
    }

    /// This consumer's id in the consumers set.
    public let id: String
    private let queue: DelayQueue
    private let subscriber: RedisSubscriber?
    private let handler: QueueJobHandler
    private let logger: Logger
    private let state = Mutex(State())
    private let wake = WakeSignal()
    private let settler: SettleBatcher
    /// The handlers' cancel checks share round trips.
    private let checks: CoalescingPipeline
    private let refill: Int
    /// Jobs take the event loops in turn, so the work they start (and the connections it opens) uses every core.
    private let executors = EventLoopTaskExecutors()
    private let handled = Counter(label: "notify_queue_jobs_handled_total")
    private let dropped = Counter(label: "notify_queue_jobs_dropped_cancelled_total")
    private let leaseExtensions = Counter(label: "notify_queue_lease_extensions_total")
    private let lag = Metrics.Timer(label: "notify_queue_due_to_claim_lag", preferredDisplayUnit: .milliseconds)

    /// - Parameters:
    ///   - subscriber: where wake-ups arrive (a running ``RedisSubscriber``); without one the consumer relies on
    ///     its sleep cap alone.
    public init(
        queue: DelayQueue, subscriber: RedisSubscriber?, id: String = "consumer-\(UUID().uuidString.prefix(8))",
        logger: Logger, handler: @escaping QueueJobHandler
    ) {
        self.id = id
        self.queue = queue
        self.subscriber = subscriber
        self.handler = handler
        self.logger = logger
        self.settler = SettleBatcher(queue: queue)
        self.checks = CoalescingPipeline(client: queue.client)
        self.refill = ClaimPlan.refill(
            maxConcurrentJobs: queue.configuration.maxConcurrentJobs, claimBatch: queue.configuration.claimBatch)
    }

    /// The shards this consumer owns now.
    public var ownedShards: [Int] { self.state.withLock { $0.owned } }

    public func run() async throws {
        do {
            try await self.heartbeat()
        } catch {
            // Not fatal: the heartbeat loop keeps trying, and until it gets through this consumer owns no shards.
            self.logger.warning("queue heartbeat failed", metadata: ["error": "\(error)"])
        }
        await withTaskGroup(of: Void.self) { services in
            services.addTask { await self.heartbeatLoop() }
            if let subscriber = self.subscriber {
                services.addTask { await self.listenForWakeUps(subscriber) }
            }
            services.addTask { await self.settler.run() }
            services.addTask { await self.keepLeases() }
            // Returns once the claim loop has stopped and every job it started has run and settled.
            await withDiscardingTaskGroup { jobs in
                await self.claimLoop(jobs: &jobs)
            }
            services.cancelAll()
        }
        try? await self.leave()
    }

    // MARK: Membership

    private func heartbeat() async throws {
        let configuration = self.queue.configuration
        let reply = try await self.queue.client.eval(
            self.queue.scripts.heartbeat, keys: [self.queue.keys.consumers],
            arguments: [
                .string(self.id), .integer(configuration.consumerTtlMs), .string(self.queue.clock.argument), "",
            ])
        let members = reply.array?.compactMap(\.string) ?? []
        let owned = ShardAssignment.shards(
            of: self.id, among: members.contains(self.id) ? members : members + [self.id],
            shardCount: self.queue.shards.count)
        let changed = self.state.withLock { state -> Bool in
            defer { state.owned = owned }
            return state.owned != owned
        }
        if changed {
            self.logger.info(
                "queue shards assigned",
                metadata: [
                    "queue.consumer": "\(self.id)", "queue.shards": "\(owned.count)",
                    "queue.consumers": "\(members.count)",
                ])
            self.wake.signal()
        }
    }

    private func leave() async throws {
        _ = try await self.queue.client.eval(
            self.queue.scripts.heartbeat, keys: [self.queue.keys.consumers],
            arguments: [.string(self.id), 0, .string(self.queue.clock.argument), "leave"])
    }

    private func heartbeatLoop() async {
        let interval = Duration.milliseconds(self.queue.configuration.heartbeatIntervalMs)
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            do {
                try await self.heartbeat()
            } catch {
                self.logger.warning("queue heartbeat failed", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Wakes the claim loop when a schedule makes an earlier job the head of an owned shard. Retries the
    /// subscription until it holds; meanwhile the sleep cap bounds how late a job can be.
    private func listenForWakeUps(_ subscriber: RedisSubscriber) async {
        while !Task.isCancelled {
            do {
                let wakeUps = try await subscriber.subscribe(to: [self.queue.keys.wakeChannel])
                await withTaskCancellationHandler {
                    for await message in wakeUps {
                        let shard = String(buffer: message.payload).split(separator: " ").first.flatMap { Int($0) }
                        if let shard, self.ownedShards.contains(shard) {
                            self.state.withLock { _ = $0.woken.insert(shard) }
                            self.wake.signal()
                        }
                    }
                } onCancel: {
                    wakeUps.unsubscribe()
                }
                return  // the subscriber shut down
            } catch let error as RedisClientError where error.code == .shutdown {
                return
            } catch {
                self.logger.warning("queue wake-up subscription failed; retrying", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    // MARK: Claiming

    /// Claims from the shards that have jobs due: each claim reply says when the shard's next job falls due, so
    /// between full sweeps (every `maxSleepMs`, and whenever ownership changes) only shards whose next job is due,
    /// or that a wake-up named, are claimed from. With jobs falling due every millisecond that is one or two
    /// shards per round instead of all of them.
    private func claimLoop(jobs group: inout DiscardingTaskGroup) async {
        let configuration = self.queue.configuration
        let sweepEvery = Duration.milliseconds(configuration.maxSleepMs)
        var nextDue: [Int: ContinuousClock.Instant] = [:]
        var lastSweep = ContinuousClock.now - sweepEvery
        var lastOwned: [Int] = []
        var lastShard = -1
        let refill = self.refill
        // Whether the consumer has been full since it last had `refill` slots free (or found shards short of
        // jobs): only then do a few free slots wait for more.
        var sawFull = false
        // Since when fewer than `refill` slots have been free, after being full.
        var partialSince: ContinuousClock.Instant?
        await withGracefulShutdownHandler {
            while !Task.isCancelled, !Task.isShuttingDownGracefully {
                let (owned, free, woken) = self.state.withLock { state in
                    (state.owned, configuration.maxConcurrentJobs - state.running, state.woken)
                }
                let now = ContinuousClock.now
                if owned != lastOwned {
                    nextDue = [:]
                    lastOwned = owned
                }
                if free <= 0 { sawFull = true }
                if free >= refill { sawFull = false }
                if !sawFull || free <= 0 {
                    partialSince = nil
                } else if partialSince == nil {
                    partialSince = now
                }
                let claimNow = free > 0 && (partialSince.map { now - $0 >= ClaimPlan.refillWait } ?? true)
                let sweep = now - lastSweep >= sweepEvery
                // A sweep counts as done even with nothing to claim (no shards owned yet): the next is a sweep
                // interval away, so an idle or shard-less consumer sleeps instead of spinning.
                if sweep, claimNow { lastSweep = now }
                let targets =
                    sweep
                    ? owned
                    : owned.filter { shard in woken.contains(shard) || (nextDue[shard].map { $0 <= now } ?? true) }
                // Wake-ups are taken only when claiming: a full consumer keeps them for later.
                if claimNow { self.state.withLock { $0.woken.subtract(woken) } }
                if claimNow,
                    let plan = ClaimPlan.make(
                        free: free, targets: targets, claimBatch: configuration.claimBatch, after: lastShard)
                {
                    lastShard = plan.shards.last ?? lastShard
                    partialSince = nil
                    // The due shards left out of this claim (few free slots) are claimed from next.
                    for shard in targets where !plan.shards.contains(shard) { nextDue[shard] = now }
                    do {
                        // Leases run from the claim, which Redis ran after this instant: a conservative deadline.
                        let claimedBy = ContinuousClock.now + .milliseconds(configuration.leaseMs)
                        let (batches, dropped) = try await self.claim(shards: plan.shards, perShard: plan.perShard)
                        let claimed = Set(batches.map(\.shard))
                        for shard in plan.shards where !claimed.contains(shard) {
                            nextDue[shard] = ContinuousClock.now + .milliseconds(200)  // its script failed: soon again
                        }
                        // Fewer jobs than planned: the shards are short of work, not the consumer of slots.
                        if batches.reduce(0, { $0 + $1.jobs.count }) < plan.perShard * plan.shards.count {
                            sawFull = false
                        }
                        for batch in batches {
                            for job in batch.jobs where !dropped.contains(job.id) {
                                self.start(job, leaseDeadline: claimedBy, in: &group)
                            }
                            if batch.jobs.count == plan.perShard {
                                nextDue[batch.shard] = now  // more may be due right now
                            } else if let next = [batch.nextDueMs, batch.nextLeaseDeadlineMs].compactMap({ $0 }).min() {
                                nextDue[batch.shard] = now + .milliseconds(max(0, next - batch.nowMs))
                            } else {
                                nextDue[batch.shard] = now + sweepEvery  // empty: the next sweep looks again
                            }
                        }
                        continue  // free slots and due shards may remain: look again before sleeping
                    } catch {
                        self.logger.warning("queue claim failed", metadata: ["error": "\(error)"])
                        for shard in owned { nextDue[shard] = ContinuousClock.now + .milliseconds(200) }
                    }
                }
                let wakeAt = ([lastSweep + sweepEvery] + owned.compactMap { nextDue[$0] }).min() ?? (now + sweepEvery)
                let sleep = wakeAt - ContinuousClock.now
                if free <= 0 {
                    await self.wake.wait(upTo: sweepEvery)  // a finishing job signals
                } else if !claimNow, let partialSince {
                    // A job finishing that frees `refill` slots signals; else claim what is free after the wait.
                    await self.wake.wait(upTo: ClaimPlan.refillWait - (now - partialSince))
                } else if sleep > .zero {
                    await self.wake.wait(upTo: sleep)
                } else if owned.isEmpty {
                    await self.wake.wait(upTo: sweepEvery)  // nothing to claim from until the heartbeat assigns shards
                }
            }
        } onGracefulShutdown: {
            self.wake.signal()
        }
    }

    /// Claims from every owned shard in one pipelined round trip, then drops the jobs cancelled since (one
    /// SMISMEMBER per shard, pipelined), so a job cancelled after its claim rarely reaches the handler. Only the
    /// claim itself may throw: once jobs are leased, a failure of the later steps must not strand them until their
    /// leases expire, so the check is skipped (the handler's ``JobControl/mayProceed()`` is the real guard) and a
    /// failed drop leaves the job to claim.lua, which finishes cancelled jobs whose lease expired.
    private func claim(shards: [Int], perShard: Int) async throws -> (batches: [ClaimBatch], dropped: Set<JobID>) {
        let configuration = self.queue.configuration
        let calls = shards.map { shard in
            RedisScriptCall(
                keys: self.queue.keys.shardKeys(shard),
                arguments: [
                    .string(self.queue.clock.argument), .integer(perShard), .integer(configuration.leaseMs),
                    .integer(configuration.maxAttempts), .integer(configuration.doneRetentionMs),
                ])
        }
        let replies = try await self.queue.client.eval(self.queue.scripts.claim, batch: calls)
        var batches: [ClaimBatch] = []
        for (shard, reply) in zip(shards, replies) {
            do {
                let batch = try DelayQueue.decodeClaim(try reply.throwingIfError(), shard: shard)
                for job in batch.jobs {
                    self.lag.recordMilliseconds(max(0, job.claimedAtMs - job.dueAtMs))
                }
                batches.append(batch)
            } catch {
                // This shard's script failed (nothing leased), or its reply could not be read (its jobs stay leased
                // until their leases expire, then are claimed again); the other shards' jobs go on.
                self.logger.warning("queue claim failed", metadata: ["queue.shard": "\(shard)", "error": "\(error)"])
            }
        }
        let claimed = batches.filter { !$0.jobs.isEmpty }
        guard !claimed.isEmpty else { return (batches, []) }
        do {
            let checks = claimed.map { batch in
                RedisCommand(
                    "SMISMEMBER",
                    [self.queue.keys.shardKeys(batch.shard)[QueueKeys.cancelledIndex]]
                        + batch.jobs.map { .string($0.id.description) })
            }
            let flags = try await self.queue.client.send(batch: checks)
            var cancelled: [ClaimedJob] = []
            for (batch, reply) in zip(claimed, flags) {
                let marks = try reply.throwingIfError().array ?? []
                for (job, mark) in zip(batch.jobs, marks) where mark == .integer(1) {
                    cancelled.append(job)
                }
            }
            guard !cancelled.isEmpty else { return (batches, []) }
            let outcomes = try await self.queue.settle(batch: cancelled.map { ($0, .drop) })
            self.dropped.increment(by: outcomes.count(where: { $0 == .cancelled }))
            return (batches, Set(cancelled.map(\.id)))
        } catch {
            self.logger.warning(
                "queue cancel check after claim failed; handlers check each job", metadata: ["error": "\(error)"])
            return (batches, [])
        }
    }

    private func start(
        _ job: ClaimedJob, leaseDeadline: ContinuousClock.Instant, in group: inout DiscardingTaskGroup
    ) {
        self.state.withLock { state in
            state.running += 1
            state.leased[job.leaseKey] = (job, leaseDeadline)
        }
        group.addTask(executorPreference: self.executors.next()) {
            await self.process(job)
            // The claim loop waits while full, and then for a refill's worth of free slots (or a short while).
            let freed = self.state.withLock { state -> Int in
                state.running -= 1
                return self.queue.configuration.maxConcurrentJobs - state.running
            }
            if freed == 1 || freed == self.refill { self.wake.signal() }
        }
    }

    private func process(_ job: ClaimedJob) async {
        let result = await self.handler(job, JobControl(queue: self.queue, job: job, pipeline: self.checks))
        let action: SettleAction =
            switch result {
            case .done: .ack
            case .dropped: .drop
            case .retry(let afterMs, let error):
                .retry(afterMs: afterMs ?? self.queue.configuration.retryDelayMs(attempt: job.attempt), error: error)
            case .deadLetter(let error): .deadLetter(error: error)
            case .deferred(let afterMs): .deferral(afterMs: afterMs)
            }
        // A result that is never saved runs the job again once its lease ends (a push sent twice, with no crash
        // involved): a failed settle is tried again, with the lease kept alive meanwhile, until it lands, the
        // lease is lost anyway, the consumer stops, or one lease time has passed since the first failure (the
        // keeper extends the lease meanwhile, so the lease alone would never end a settle that keeps failing).
        // Settling is idempotent per lease token.
        var backoff = Duration.milliseconds(50)
        var failingSince: ContinuousClock.Instant?
        while true {
            // While a settle is on its way the keeper leaves the job alone, so an extension racing the settle is
            // not mistaken for a lost lease.
            guard let lease = self.state.withLock({ $0.leased.removeValue(forKey: job.leaseKey) }) else {
                self.logger.warning(
                    "queue job lost its lease before its result was saved; another claim runs it again",
                    metadata: ["notify.job.id": "\(job.id)"])
                return
            }
            do {
                _ = try await self.settler.settle(job, action)
                self.handled.increment()
                return
            } catch {
                self.logger.warning(
                    "queue job could not be settled; trying again",
                    metadata: ["notify.job.id": "\(job.id)", "error": "\(error)"])
                let now = ContinuousClock.now
                failingSince = failingSince ?? now
                // While the process stops, a few more seconds: a transient error (a reset during the same deploy)
                // must not turn a landed ack into a push sent again.
                let budget: Duration =
                    Task.isShuttingDownGracefully ? .seconds(5) : .milliseconds(self.queue.configuration.leaseMs)
                guard !(error is CancellationError), now < lease.deadline, now - failingSince! < budget else {
                    return
                }
            }
            self.state.withLock { $0.leased[job.leaseKey] = lease }
            do {
                // Jittered, so jobs that failed together do not come back together.
                try await Task.sleep(for: backoff * Double.random(in: 0.5...1.5))
            } catch {
                return  // the consumer stops: the lease expires and another claim retries the job
            }
            backoff = min(backoff * 2, .seconds(2))
        }
    }

    /// Every sixth of the lease time, extends in one batch the leases of the jobs not settled yet that have less
    /// than two thirds of their lease left: a slow gateway never lets a lease expire under running work (another
    /// claim would send the job twice), a fast job costs nothing, and a failed extension has another third of the
    /// lease to be retried. Only a consumer that stops loses its jobs.
    private func keepLeases() async {
        let lease = Duration.milliseconds(self.queue.configuration.leaseMs)
        let tick = Duration.milliseconds(max(1, self.queue.configuration.leaseMs / 6))
        while true {
            do {
                try await Task.sleep(for: tick)
            } catch {
                return  // the consumer stops
            }
            let now = ContinuousClock.now
            let due = self.state.withLock { state in
                state.leased.values.filter { $0.deadline - now < lease * 2 / 3 }.map(\.job)
            }
            guard !due.isEmpty else { continue }
            do {
                // Each job's own result: a group that failed keeps its old deadline and is tried on the next tick,
                // without discarding the extensions that landed.
                let results = try await self.queue.settleEach(batch: due.map { ($0, .extendLease) })
                var extended = 0
                for (job, result) in zip(due, results) {
                    guard case .success(let outcome) = result else { continue }
                    let known = self.state.withLock { state -> Bool in
                        guard state.leased[job.leaseKey] != nil else { return false }
                        if outcome == .extended {
                            state.leased[job.leaseKey]?.deadline = now + lease
                        } else {
                            state.leased.removeValue(forKey: job.leaseKey)
                        }
                        return true
                    }
                    if outcome == .extended {
                        extended += 1
                    } else if known {
                        // Settled meanwhile is fine; still running without a lease means another worker may
                        // hold the job now.
                        self.logger.warning(
                            "queue job lost its lease while running",
                            metadata: ["notify.job.id": "\(job.id)", "queue.outcome": "\(outcome)"])
                    }
                }
                self.leaseExtensions.increment(by: extended)
            } catch {
                // Redis unreachable: tried again at the next tick, while a third of the lease is still left.
                self.logger.warning("queue lease extension failed", metadata: ["error": "\(error)"])
            }
        }
    }
}

extension ClaimedJob {
    /// Identifies this claim within a consumer: lease tokens are counted per shard.
    var leaseKey: String { "\(self.shard)|\(self.leaseToken)" }
}
