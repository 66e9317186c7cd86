import DelayQueue
import Foundation
import Logging
import NotifyCore
import RedisClient
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
    private let metrics = PushMetrics()

    public init(
        queue: DelayQueue, senders: [any PushSender], configuration: PushWorkerConfiguration, logger: Logger,
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.queue = queue
        self.devices = DeviceStore(client: queue.client, keys: queue.userKeys)
        var lanes: [PushProvider: ProviderLane] = [:]
        for sender in senders {
            lanes[sender.provider] = ProviderLane(
                sender: sender, maxInFlight: configuration.maxInFlightPerProvider,
                breaker: CircuitBreaker(
                    failureThreshold: configuration.breakerFailures, openFor: .milliseconds(configuration.breakerOpenMs)
                ))
        }
        self.lanes = lanes
        self.inFlight = ConcurrencyLimit(limit: configuration.maxInFlight)
        self.coalesceWindow = .milliseconds(configuration.coalesceWindowMs)
        self.logger = logger
        self.now = now
    }

    /// The ``QueueJobHandler``.
    public func handle(_ job: ClaimedJob, _ control: JobControl) async -> JobResult {
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
            ) {
                await self.deliver($0)
            }
        }
        return await self.deliver([member])[0]
    }

    /// Per member: whether any device check found it cancelled (or its lease lost).
    private final class Cancellations: Sendable {
        let flags: Mutex<[Bool]>
        init(count: Int) { self.flags = Mutex([Bool](repeating: false, count: count)) }
    }

    func deliver(_ members: [Coalescer.Member]) async -> [JobResult] {
        let nowDate = self.now()
        let nowMs = Int64(nowDate.timeIntervalSince1970 * 1_000)
        var results = [JobResult?](repeating: nil, count: members.count)
        for (index, member) in members.enumerated() where member.message.expired(nowMs: nowMs) {
            results[index] = .dropped  // past its time to live: the gateway would not deliver it either
            self.metrics.job("expired")
        }
        let live = members.indices.filter { results[$0] == nil }
        guard let first = live.first else { return results.map { $0 ?? .dropped } }
        let user = members[first].job.id.userID
        let keys = self.queue.userKeys
        var commands = [
            RedisCommand("HGETALL", .string(keys.devices(user))),
            RedisCommand("HGETALL", .string(keys.preferences(user))),
            RedisCommand("ZCARD", self.queue.pendingKey(shard: members[first].job.shard, userID: user)),
        ]
        for index in live {
            let id = members[index].job.id
            commands.append(
                RedisCommand("SMEMBERS", .string(keys.sentDevices(notificationID: id.notificationID, userID: user))))
        }
        let replies: [RedisValue]
        do {
            replies = try await self.queue.client.send(batch: commands).map { try $0.throwingIfError() }
        } catch {
            return self.finish(
                results, live: live, with: .retry(afterMs: nil, error: "reading the user's devices failed: \(error)"))
        }
        let entries = DeviceStore.entries(from: replies[0])
        let preferences = PreferenceStore.decode(replies[1])
        let badge = replies[2].int ?? 0
        let sent = replies[3...].map { Set(($0.array ?? []).compactMap(\.string)) }
        let newest = members[live.last!].message
        if preferences.mutes(type: newest.type, room: newest.room, at: nowDate) {
            self.metrics.job("muted", count: live.count)
            return self.finish(results, live: live, with: .dropped)
        }
        if let end = preferences.quietHoursEnd(after: nowDate) {
            self.metrics.job("deferred", count: live.count)
            return self.finish(
                results, live: live, with: .deferred(afterMs: max(1_000, Int(end.timeIntervalSince(nowDate) * 1_000))))
        }
        guard !entries.isEmpty else {
            self.metrics.job("no_devices", count: live.count)
            return self.finish(results, live: live, with: .done)
        }
        let parts = live.map { (jobID: members[$0].job.id, message: members[$0].message) }
        let push = OutgoingPush.coalescing(parts, badge: badge)!
        if live.count > 1 { self.metrics.job("coalesced", count: live.count - 1) }
        // A device every member already reached is skipped; one that some reached gets the coalesced push.
        let targets = entries.filter { entry in !sent.allSatisfy { $0.contains(entry.id) } }
        let cancellations = Cancellations(count: members.count)
        let liveMembers = live.map { (index: $0, member: members[$0]) }
        let dueMs = members[live.last!].job.dueAtMs
        let outcomes = await withTaskGroup(of: (DeviceStore.Entry, ProviderLane.Result?).self) { group in
            for entry in targets {
                group.addTask {
                    (
                        entry,
                        await self.send(
                            push, to: entry, members: liveMembers, cancellations: cancellations, dueMs: dueMs)
                    )
                }
            }
            var outcomes: [(DeviceStore.Entry, ProviderLane.Result?)] = []
            for await outcome in group { outcomes.append(outcome) }
            return outcomes
        }
        let combined = await self.combine(outcomes, user: user, attempt: members[first].job.attempt)
        let cancelled = cancellations.flags.withLock { $0 }
        for index in live {
            results[index] = cancelled[index] ? .dropped : combined
        }
        for result in results {
            self.metrics.job(Self.name(result ?? .dropped))
        }
        return results.map { $0 ?? .dropped }
    }

    private func send(
        _ push: OutgoingPush, to entry: DeviceStore.Entry, members: [(index: Int, member: Coalescer.Member)],
        cancellations: Cancellations, dueMs: Int64
    ) async -> ProviderLane.Result? {
        guard let lane = self.lanes[PushProvider(entry.device.platform)] else {
            return .answered(.deadLetter(reason: "\(entry.device.platform.rawValue) is not configured on this worker"))
        }
        let result = await self.inFlight.withPermit {
            await lane.send(push, to: entry) {
                // Right before the gateway call: an ack or retract since the claim drops the push.
                var anyProceeds = false
                for (index, member) in members {
                    let proceeds: Bool
                    do {
                        proceeds = try await member.control.mayProceed()
                    } catch {
                        return false  // cannot tell: not sent now; the job is retried below
                    }
                    if proceeds {
                        anyProceeds = true
                    } else {
                        cancellations.flags.withLock { $0[index] = true }
                    }
                }
                return anyProceeds
            }
        }
        if case .answered(.delivered) = result {
            self.metrics.lag(milliseconds: Int64(self.now().timeIntervalSince1970 * 1_000) - dueMs)
            await self.recordSent(entry.id, members: members.map(\.member))
        }
        return result
    }

    /// Remembers that the device got the push, so a retry or replay of any of these jobs skips it. A crash before
    /// this point sends the push to it once more (after the lease): at least once per device.
    private func recordSent(_ deviceID: String, members: [Coalescer.Member]) async {
        let guardMs = self.queue.configuration.jobGuardMs
        var commands: [RedisCommand] = []
        for member in members {
            let key = RedisArgument.string(
                self.queue.userKeys.sentDevices(
                    notificationID: member.job.id.notificationID, userID: member.job.id.userID))
            commands.append(RedisCommand("SADD", key, .string(deviceID)))
            commands.append(RedisCommand("PEXPIRE", key, .integer(guardMs)))
        }
        do {
            for reply in try await self.queue.client.send(batch: commands) { _ = try reply.throwingIfError() }
        } catch {
            self.logger.warning(
                "could not record a delivered push; a retry may send it to this device again",
                metadata: ["error": "\(error)"])
        }
    }

    /// One result for the job from its devices' outcomes: retry if any device should be retried, defer if any
    /// was held back, dead-letter if any failed for good, else done. Gone devices are removed here.
    private func combine(_ outcomes: [(DeviceStore.Entry, ProviderLane.Result?)], user: String, attempt: Int) async
        -> JobResult
    {
        var retry: (delayMs: Int, reasons: [String])?
        var holdMs: Int?
        var dead: [String] = []
        var skipped = false
        for (entry, result) in outcomes {
            let provider = PushProvider(entry.device.platform)
            switch result {
            case nil:
                skipped = true
            case .held(let duration):
                let ms =
                    Int(duration.components.seconds * 1_000)
                    + Int(duration.components.attoseconds / 1_000_000_000_000_000)
                holdMs = max(holdMs ?? 0, ms + Int.random(in: 0...max(1, ms / 5)))
            case .answered(.delivered):
                break
            case .answered(.removeDevice(let reason)):
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
            case .answered(.retry(let reason, let retryAfterMs, let backoff)):
                if attempt >= backoff.maxAttempts {
                    dead.append("\(provider.rawValue) \(entry.id): \(reason) (after \(attempt) attempts)")
                } else {
                    let delay = backoff.delayMs(afterAttempt: attempt, retryAfterMs: retryAfterMs)
                    retry = (
                        max(retry?.delayMs ?? 0, delay),
                        (retry?.reasons ?? []) + ["\(provider.rawValue) \(entry.id): \(reason)"]
                    )
                }
            case .answered(.refreshCredentialsAndRetry(let reason)), .answered(.breakCircuit(let reason)):
                // Credentials or configuration: the breaker is open now and holds every other send back; this
                // one counts an attempt, so a fault that is never fixed ends in the dead letters, for a replay.
                let delay = PushBackoff.network.delayMs(afterAttempt: attempt)
                retry = (max(retry?.delayMs ?? 0, delay), (retry?.reasons ?? []) + ["\(provider.rawValue): \(reason)"])
            case .answered(.deadLetter(let reason)):
                dead.append("\(provider.rawValue) \(entry.id): \(reason)")
            }
        }
        if let retry { return .retry(afterMs: retry.delayMs, error: (retry.reasons + dead).joined(separator: "; ")) }
        if let holdMs { return .deferred(afterMs: holdMs) }
        if skipped { return .retry(afterMs: nil, error: "the cancel check failed") }
        if !dead.isEmpty { return .deadLetter(error: dead.joined(separator: "; ")) }
        return .done
    }

    private func finish(_ results: [JobResult?], live: [Int], with result: JobResult) -> [JobResult] {
        var results = results
        for index in live { results[index] = result }
        return results.map { $0 ?? .dropped }
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
