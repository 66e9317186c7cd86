import RedisClient
import ServiceLifecycle
import Synchronization

/// Wakes the live listeners whose heartbeat or deadline is due: one timer for the process instead of one per open
/// stream (at 20,000 streams, 20,000 sleeping tasks and timers).
///
/// As a service it also ends every listener on graceful shutdown, with ``RedisSubscription/EndReason/shutdown``:
/// placed after the HTTP servers in the service group, it stops first, so open streams end cleanly and the servers
/// then drain at once. A listener that starts after the shutdown ends at once the same way.
public final class LiveTicker: Service, Sendable {
    /// When a listener wants ``LiveListener/Item/tick``.
    public struct Schedule: Sendable {
        /// Every `interval` (a heartbeat).
        public var interval: Duration
        /// And once at `deadline` (a token's expiry), if earlier than the next interval.
        public var deadline: ContinuousClock.Instant?

        public init(every interval: Duration, deadline: ContinuousClock.Instant? = nil) {
            self.interval = interval
            self.deadline = deadline
        }

        /// The first tick: the first heartbeat at a random point of the second half of the interval, so streams
        /// that start together (clients reconnecting after a deploy) do not all beat in the same tick ever after;
        /// at the deadline if that comes first, even one already passed (a token that expires while its stream
        /// starts ends the stream at the next tick, not a heartbeat later).
        func first(from now: ContinuousClock.Instant) -> ContinuousClock.Instant {
            let beat = now + self.interval * Double.random(in: 0.5...1)
            guard let deadline = self.deadline else { return beat }
            return min(beat, deadline)
        }

        /// The tick after one at `now`: the deadline only if it is still ahead.
        func next(after now: ContinuousClock.Instant) -> ContinuousClock.Instant {
            let next = now + self.interval
            guard let deadline = self.deadline, deadline > now else { return next }
            return min(next, deadline)
        }
    }

    private struct Entry {
        var listener: LiveListener
        var schedule: Schedule?
        var due: ContinuousClock.Instant?
    }

    private struct State {
        var entries: [ObjectIdentifier: Entry] = [:]
        var isShutdown = false
    }

    /// How often due listeners are looked for: a tick comes at most this late.
    public let resolution: Duration
    private let state = Mutex(State())

    public init(resolution: Duration = .milliseconds(250)) {
        self.resolution = resolution
    }

    /// Listeners registered now, for tests and ops.
    public var count: Int { self.state.withLock { $0.entries.count } }

    /// Registers `listener` (ticked by `schedule`, when given); ends it at once after a shutdown.
    func add(_ listener: LiveListener, schedule: Schedule?, now: ContinuousClock.Instant = .now) {
        let added = self.state.withLock { state -> Bool in
            guard !state.isShutdown else { return false }
            state.entries[ObjectIdentifier(listener)] = Entry(
                listener: listener, schedule: schedule, due: schedule?.first(from: now))
            return true
        }
        if !added { listener.end(.shutdown) }
    }

    func remove(_ listener: LiveListener) {
        _ = self.state.withLock { $0.entries.removeValue(forKey: ObjectIdentifier(listener)) }
    }

    public func run() async throws {
        await withGracefulShutdownHandler {
            while !self.state.withLock({ $0.isShutdown }) {
                do {
                    try await Task.sleep(for: self.resolution)
                } catch {
                    break
                }
                self.tickDue(now: ContinuousClock.now)
            }
        } onGracefulShutdown: {
            self.shutdown()
        }
        self.shutdown()
    }

    /// Ticks every listener due at `now` and schedules its next tick.
    func tickDue(now: ContinuousClock.Instant) {
        let due = self.state.withLock { state -> [LiveListener] in
            // Keys first, then the updates: writing while iterating would copy the whole dictionary.
            let keys = state.entries.compactMap { key, entry in (entry.due.map { $0 <= now } ?? false) ? key : nil }
            return keys.compactMap { key in
                guard let schedule = state.entries[key]?.schedule else { return nil }
                state.entries[key]?.due = schedule.next(after: now)
                return state.entries[key]?.listener
            }
        }
        for listener in due { listener.tick() }
    }

    /// Ends every listener (and any added later) with ``RedisSubscription/EndReason/shutdown``.
    public func shutdown() {
        let entries = self.state.withLock { state in
            state.isShutdown = true
            defer { state.entries = [:] }
            return Array(state.entries.values)
        }
        for entry in entries { entry.listener.end(.shutdown) }
    }
}
