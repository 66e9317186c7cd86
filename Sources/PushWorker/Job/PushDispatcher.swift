import DelayQueue
import Foundation
import Logging
import NotifyCore
import RedisClient
import ServiceLifecycle
import Synchronization

/// The push workers' job handler: for each due job, reads the user's devices, preferences and badge in one round
/// trip, applies mutes and quiet hours as they are now, coalesces jobs with the same collapse key, and sends to
/// every device the job did not reach yet, concurrently and each on its own: one failing device never holds
/// the others back, and a retry sends only to the devices that did not get it.
public final class PushDispatcher: Sendable {
    let queue: DelayQueue
    let devices: DeviceStore
    let lanes: [PushProvider: ProviderLane]
    let inFlight: ConcurrencyLimit
    let coalesceWindow: Duration
    let logger: Logger
    let now: @Sendable () -> Date
    private let coalescer = Coalescer()
    /// Jobs' reads of their users' devices and preferences share round trips.
    private let reads: CoalescingPipeline
    private let metrics = PushMetrics()

    public init(
        queue: DelayQueue, senders: [any PushSender], configuration: PushWorkerConfiguration, logger: Logger,
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.queue = queue
        self.devices = DeviceStore(client: queue.client, keys: queue.userKeys)
        self.reads = CoalescingPipeline(client: queue.client)
        var lanes: [PushProvider: ProviderLane] = [:]
        for sender in senders {
            lanes[sender.provider] = ProviderLane(
                sender: sender, maxInFlight: configuration.maxInFlightPerProvider,
                breaker: CircuitBreaker(
                    failureThreshold: configuration.breakerFailures, openForMs: Int64(configuration.breakerOpenMs)))
        }
        self.lanes = lanes
        self.inFlight = ConcurrencyLimit(limit: configuration.maxInFlight)
        self.coalesceWindow = .milliseconds(configuration.coalesceWindowMs)
        self.logger = logger
        self.now = now
    }

    private var nowMs: Int64 { Int64(self.now().timeIntervalSince1970 * 1_000) }

    /// The ``QueueJobHandler``.
    public func handle(_ job: ClaimedJob, _ control: JobControl) async -> JobResult {
        if Task.isShuttingDownGracefully { return .deferred(afterMs: 0) }  // claimed as we stop: give it back
        let message: PushMessage
        do {
            message = try PushMessage(payload: job.payload)
        } catch {
            self.metrics.job("dead")
            return .deadLetter(error: "the job's payload is not a push: \(error)")
        }
        let member = Coalescer.Member(job: job, control: control, message: message)
        if let key = message.push.collapseKey, self.coalesceWindow > .zero {
            return await self.coalescer.run(
                key: "\(job.id.userID)\u{0}\(key)", member: member, window: self.coalesceWindow
            ) { await self.deliver($0) }
        }
        return await self.deliver([member])[0]
    }

    /// Per job of a group: its result once known, and the metric it counts under.
    private struct Verdicts {
        var results: [JobResult?]
        var labels: [String?]

        init(count: Int) {
            self.results = Array(repeating: nil, count: count)
            self.labels = Array(repeating: nil, count: count)
        }

        var open: [Int] { self.results.indices.filter { self.results[$0] == nil } }

        mutating func set(_ indices: [Int], _ result: JobResult, label: String? = nil) {
            for index in indices {
                self.results[index] = result
                self.labels[index] = label
            }
        }
    }

    func deliver(_ members: [Coalescer.Member]) async -> [JobResult] {
        var verdicts = Verdicts(count: members.count)
        defer {
            for (result, label) in zip(verdicts.results, verdicts.labels) {
                self.metrics.job(label ?? Self.name(result ?? .dropped))
            }
        }
        let nowDate = self.now()
        let nowMs = Int64(nowDate.timeIntervalSince1970 * 1_000)
        // Past its time to live the gateway would not deliver it either.
        verdicts.set(members.indices.filter { members[$0].message.expired(nowMs: nowMs) }, .dropped, label: "expired")
        guard let first = verdicts.open.first else { return verdicts.results.map { $0 ?? .dropped } }
        let user = members[first].job.id.userID
        let keys = self.queue.userKeys
        var commands = [
            RedisCommand("HGETALL", .string(keys.devices(user))),
            RedisCommand("HGETALL", .string(keys.preferences(user))),
            RedisCommand("ZCARD", self.queue.pendingKey(shard: members[first].job.shard, userID: user)),
        ]
        for member in members {
            let key = keys.sentDevices(notificationID: member.job.id.notificationID, userID: user)
            commands.append(RedisCommand("SMEMBERS", .string(key)))
        }
        let replies: [RedisValue]
        do {
            replies = try await self.reads.send(batch: commands).map { try $0.throwingIfError() }
        } catch {
            verdicts.set(verdicts.open, .retry(afterMs: nil, error: "reading the user's devices failed: \(error)"))
            return verdicts.results.map { $0 ?? .dropped }
        }
        let entries = DeviceStore.entries(from: replies[0])
        let preferences = PreferenceStore.decode(replies[1])
        let badge = replies[2].int ?? 0
        let sent = replies[3...].map { Set(($0.array ?? []).compactMap(\.string)) }
        verdicts.set(
            verdicts.open.filter {
                preferences.mutes(type: members[$0].message.type, room: members[$0].message.room, at: nowDate)
            },
            .dropped, label: "muted")
        if let end = preferences.quietHoursEnd(after: nowDate) {
            let wait = max(1_000, Int(end.timeIntervalSince(nowDate) * 1_000))
            verdicts.set(verdicts.open, .deferred(afterMs: wait))
        }
        // Jobs acked or retracted since the claim are dropped before anything is rendered, so a coalesced push
        // never carries their content; a single job needs no such check, as the one right before each request
        // decides for it.
        let candidates = verdicts.open
        let proceeding =
            candidates.count == 1
            ? candidates
            : await withTaskGroup(of: (Int, Bool).self) { group in
                for index in candidates {
                    // A failed check is not a cancel: the check before each request asks again, and its failure
                    // retries the job.
                    group.addTask { (index, (try? await members[index].control.mayProceed()) ?? true) }
                }
                var proceeding: [Int] = []
                for await (index, proceeds) in group where proceeds { proceeding.append(index) }
                return proceeding.sorted()
            }
        verdicts.set(candidates.filter { !proceeding.contains($0) }, .dropped)
        guard !proceeding.isEmpty else { return verdicts.results.map { $0 ?? .dropped } }
        guard !entries.isEmpty else {
            verdicts.set(proceeding, .done, label: "no_devices")
            return verdicts.results.map { $0 ?? .dropped }
        }
        let parts = proceeding.map { (jobID: members[$0].job.id, message: members[$0].message) }
        guard let push = OutgoingPush.coalescing(parts, badge: badge, nowMs: nowMs) else {
            return verdicts.results.map { $0 ?? .dropped }
        }
        if proceeding.count > 1 { self.metrics.job("coalesced", count: proceeding.count - 1) }
        // A device every member already reached is skipped; one that some reached gets the coalesced push.
        let targets = entries.filter { entry in !proceeding.allSatisfy { sent[$0].contains(entry.id) } }
        let cancellations = CancelChecks(count: members.count)
        let live = proceeding.map { (index: $0, member: members[$0]) }
        let dueMs = members[proceeding.last!].job.dueAtMs
        let outcomes = await withTaskGroup(of: (DeviceStore.Entry, ProviderLane.Result?).self) { group in
            for entry in targets {
                group.addTask {
                    let result = await self.send(
                        push, to: entry, members: live, cancellations: cancellations, dueMs: dueMs)
                    return (entry, result)
                }
            }
            var outcomes: [(DeviceStore.Entry, ProviderLane.Result?)] = []
            for await outcome in group { outcomes.append(outcome) }
            return outcomes
        }
        await self.removeGone(outcomes, user: user)
        let cancelled = cancellations.flags.withLock { $0 }
        let named = outcomes.map { entry, result in
            (device: "\(PushProvider(entry.device.platform).rawValue) \(entry.id)", result: result)
        }
        for index in proceeding {
            let job = members[index].job
            verdicts.set(
                [index],
                cancelled[index]
                    ? .dropped
                    : Self.verdict(
                        named, attempt: job.attempt,
                        heldForMs: nowMs - Self.heldSinceMs(members[index].message, preferences: preferences)))
        }
        if proceeding.contains(where: { verdicts.results[$0] != .done && verdicts.results[$0] != .dropped }) {
            // A job will run again (or be replayed): remember who got it, so that run skips them. When it is
            // done, the settle that ends it removes the record anyway, so the happy path writes nothing; a worker
            // that dies before settling sends to every device once more after the lease (at most once more).
            let reached = outcomes.compactMap { entry, result -> String? in
                if case .answered(.delivered) = result { return entry.id }
                return nil
            }
            await self.recordSent(reached, members: live.map(\.member))
        }
        return verdicts.results.map { $0 ?? .dropped }
    }

    private func send(
        _ push: OutgoingPush, to entry: DeviceStore.Entry, members: [(index: Int, member: Coalescer.Member)],
        cancellations: CancelChecks, dueMs: Int64
    ) async -> ProviderLane.Result? {
        let provider = PushProvider(entry.device.platform)
        guard let lane = self.lanes[provider] else {
            self.metrics.held(provider, "unconfigured")
            self.logger.warning(
                "a device's provider is not configured on this worker; skipped",
                metadata: ["notify.provider": "\(provider.rawValue)", "notify.device": "\(entry.id)"])
            return .answered(.delivered)  // nothing to send it through: counts as finished for this device
        }
        let result = await lane.send(push, to: entry, global: self.inFlight, nowMs: { self.nowMs }) {
            // Right before the gateway call: an ack or retract since the claim drops the push.
            var anyProceeds = false
            for (index, member) in members {
                guard let proceeds = await cancellations.mayProceed(index, check: member.control.mayProceed) else {
                    return false  // cannot tell: not sent now; the job is retried
                }
                anyProceeds = anyProceeds || proceeds
            }
            return anyProceeds
        }
        if case .answered(.delivered) = result {
            self.metrics.lag(milliseconds: self.nowMs - dueMs)
        }
        return result
    }

    /// Remembers the devices that got the push, so a retry or replay of any of these jobs skips them (the set
    /// lives with the job's guards and goes when the job ends).
    private func recordSent(_ deviceIDs: [String], members: [Coalescer.Member]) async {
        guard !deviceIDs.isEmpty else { return }
        let guardMs = self.queue.configuration.jobGuardMs
        var commands: [RedisCommand] = []
        for member in members {
            let key = RedisArgument.string(
                self.queue.userKeys.sentDevices(
                    notificationID: member.job.id.notificationID, userID: member.job.id.userID))
            commands.append(RedisCommand("SADD", [key] + deviceIDs.map { .string($0) }))
            commands.append(RedisCommand("PEXPIRE", key, .integer(guardMs), "GT"))
            commands.append(RedisCommand("PEXPIRE", key, .integer(guardMs), "NX"))
        }
        do {
            for reply in try await self.queue.client.send(batch: commands) { _ = try reply.throwingIfError() }
        } catch {
            self.logger.warning(
                "could not record the devices a push reached; its retry may send to them again",
                metadata: ["error": "\(error)"])
        }
    }

    /// Removes the devices their gateway declared gone (only if not registered again since).
    private func removeGone(_ outcomes: [(DeviceStore.Entry, ProviderLane.Result?)], user: String) async {
        for (entry, result) in outcomes {
            guard case .answered(.removeDevice(let reason)) = result else { continue }
            let provider = PushProvider(entry.device.platform)
            do {
                if try await self.devices.remove(userID: user, entry) { self.metrics.removed(provider) }
                self.logger.info(
                    "removed a device its gateway declared gone",
                    metadata: [
                        "notify.device": "\(entry.id)", "notify.provider": "\(provider.rawValue)",
                        "reason": "\(reason)",
                    ])
            } catch {
                self.logger.warning("could not remove a gone device", metadata: ["error": "\(error)"])
            }
        }
    }

    /// How long past its due time a job may be held back by open breakers without using attempts; after that,
    /// each hold counts one, so a destination that never comes back ends in the dead letters, not in claims every
    /// few seconds for the push's whole time to live.
    static let maxHoldMs: Int64 = 3_600_000

    /// Since when a push counts as held back (by a breaker, or a cancel check without answer): from its first due
    /// time, the payload's, since every deferral moves the job's own; but a push that fell due in quiet hours only
    /// from their end, so a night's wait does not count as an hour of breaker trouble.
    static func heldSinceMs(_ message: PushMessage, preferences: Preferences) -> Int64 {
        let due = Date(timeIntervalSince1970: Double(message.dueMs) / 1_000)
        guard let end = preferences.quietHoursEnd(after: due) else { return message.dueMs }
        return max(message.dueMs, Int64(end.timeIntervalSince1970 * 1_000))
    }

    /// One job's result from its devices' outcomes: retry if any device should be retried, defer if any was held
    /// back, dead-letter if any failed for good, else done. Per job, since coalesced jobs may be on different
    /// attempts.
    static func verdict(
        _ outcomes: [(device: String, result: ProviderLane.Result?)], attempt: Int, heldForMs: Int64
    ) -> JobResult {
        var retry: (delayMs: Int, reasons: [String])?
        var holdMs: Int?
        var dead: [String] = []
        var skipped = false
        func retryLater(_ device: String, _ reason: String, _ backoff: PushBackoff, retryAfterMs: Int? = nil) {
            if attempt >= backoff.maxAttempts {
                dead.append("\(device): \(reason.prefix(120)) (after \(attempt) attempts)")
            } else {
                let delay = backoff.delayMs(afterAttempt: attempt, retryAfterMs: retryAfterMs)
                retry = (max(retry?.delayMs ?? 0, delay), (retry?.reasons ?? []) + ["\(device): \(reason.prefix(120))"])
            }
        }
        for (device, result) in outcomes {
            switch result {
            case nil:
                skipped = true
            case .held(let ms) where heldForMs > Self.maxHoldMs:
                retryLater(device, "held back by an open breaker for over an hour", .network, retryAfterMs: ms)
            case .held(let ms):
                holdMs = max(holdMs ?? 0, ms + Int.random(in: 0...max(1, ms / 5)))
            case .answered(.delivered), .answered(.removeDevice):
                break
            case .answered(.retry(let reason, let retryAfterMs, let backoff)):
                retryLater(device, reason, backoff, retryAfterMs: retryAfterMs)
            case .answered(.refreshCredentialsAndRetry(let reason)), .answered(.breakCircuit(let reason)):
                // Credentials or configuration: the breaker is open now and holds every other send back; this
                // one counts an attempt, so a fault that is never fixed ends in the dead letters, for a replay.
                let delay = PushBackoff.network.delayMs(afterAttempt: attempt)
                retry = (max(retry?.delayMs ?? 0, delay), (retry?.reasons ?? []) + ["\(device): \(reason.prefix(120))"])
            case .answered(.deadLetter(let reason)):
                dead.append("\(device): \(reason.prefix(120))")
            }
        }
        // The first reasons are what an operator reads: settle keeps 1,000 characters.
        if let retry { return .retry(afterMs: retry.delayMs, error: (retry.reasons + dead).joined(separator: "; ")) }
        if let holdMs { return .deferred(afterMs: holdMs) }
        if skipped {
            // The check before the send got no answer (Redis restarting, LOADING, BUSY): nothing went out, and it
            // is not the push's fault, so it is due again soon without using an attempt (a long Redis restart
            // must not turn pushes into dead letters) — unless that has gone on for an hour past due.
            if heldForMs > Self.maxHoldMs {
                return .retry(afterMs: nil, error: "the cancel check failed for over an hour past due")
            }
            return .deferred(afterMs: 1_000 + Int.random(in: 0...1_000))
        }
        if !dead.isEmpty { return .deadLetter(error: dead.joined(separator: "; ")) }
        return .done
    }

    private static func name(_ result: JobResult) -> String {
        switch result {
        case .done: "sent"
        case .dropped: "dropped"
        case .retry: "retried"
        case .deadLetter: "dead"
        case .deferred: "deferred"
        }
    }
}

extension PushProvider {
    init(_ platform: Device.Platform) {
        switch platform {
        case .apns: self = .apns
        case .fcm: self = .fcm
        case .webpush: self = .webPush
        case .webhook: self = .webhook
        }
    }
}
