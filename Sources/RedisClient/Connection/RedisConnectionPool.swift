import Logging
import Metrics
import NIOCore
import Synchronization

/// A bounded set of pipelined connections, opened lazily and reopened with backoff after failures.
///
/// Each command leases the least busy connection (many commands share a connection, so leases are cheap); a new
/// connection is opened only when every open one is busy. Past ``RedisClientConfiguration/maxInFlightPerConnection``
/// on every connection, callers wait for a slot up to the acquire timeout, then get `poolExhausted`. Waiting callers
/// are served in the order they came: a freed slot is handed to the oldest directly, and newcomers queue behind.
final class RedisConnectionPool: Sendable {
    typealias Lease = (index: Int, connection: RedisConnection)

    fileprivate struct Waiter {
        var id: Int
        /// Completed with a lease handed over, or `nil` to decide again (a connection opened or closed, a backoff
        /// ended, the pool shut down).
        var promise: EventLoopPromise<Lease?>
    }

    /// Callers waiting for a slot, in the order they first came: a caller woken to decide again keeps its number,
    /// so it goes back to its place, not to the end. Removal by number is O(1); the line skips numbers no longer
    /// waiting.
    fileprivate struct Line {
        private var promises: [Int: EventLoopPromise<Lease?>] = [:]
        private var order = CircularBuffer<Int>()

        var isEmpty: Bool { self.promises.isEmpty }
        var count: Int { self.promises.count }

        mutating func enter(_ waiter: Waiter) {
            self.promises[waiter.id] = waiter.promise
            if let last = self.order.last, last > waiter.id {
                let position = self.order.firstIndex { $0 > waiter.id } ?? self.order.endIndex
                self.order.insert(waiter.id, at: position)
            } else {
                self.order.append(waiter.id)
            }
            if self.order.count > 2 * self.promises.count + 64 {
                self.order = CircularBuffer(self.promises.keys.sorted())
            }
        }

        /// Takes waiter `id` out if it still waits with `promise`; `false` when it was handed a slot or woken.
        /// The promise must match: a caller woken to decide again comes back under the same number with a new
        /// promise, and a timer of its previous wait that fires late must not take the new one out of the line
        /// (nothing would ever complete it).
        mutating func leave(_ id: Int, promise: EventLoopPromise<Lease?>) -> Bool {
            guard let waiting = self.promises[id], waiting.futureResult === promise.futureResult else { return false }
            self.promises.removeValue(forKey: id)
            return true
        }

        mutating func popFirst() -> Waiter? {
            while let id = self.order.popFirst() {
                if let promise = self.promises.removeValue(forKey: id) { return Waiter(id: id, promise: promise) }
            }
            return nil
        }

        mutating func removeAll() -> [Waiter] {
            var all: [Waiter] = []
            while let waiter = self.popFirst() { all.append(waiter) }
            self.order.removeAll()
            return all
        }
    }

    fileprivate struct Slot {
        var connection: RedisConnection?
        var isConnecting = false
        var inFlight = 0

        var readyConnection: RedisConnection? {
            guard let connection, connection.isActive else { return nil }
            return connection
        }
    }

    fileprivate struct State {
        var slots: [Slot]
        var waiters = Line()
        var nextWaiterID = 0
        var lastConnectError: RedisClientError?
        /// Connect failures in a row, over all slots: an outage backs off the pool, not each slot on its own.
        var connectFailures = 0
        var retryAt = NIODeadline.uptimeNanoseconds(0)
        var isShutdown = false
    }

    private enum Decision {
        case use(Int, RedisConnection)
        case wait(id: Int, promise: EventLoopPromise<Lease?>, wakeAt: NIODeadline?)
        case fail(RedisClientError)
    }

    let configuration: RedisClientConfiguration
    private let eventLoopGroup: any EventLoopGroup
    private let logger: Logger
    private let backoff: ReconnectBackoff
    private let state: Mutex<State>
    private let connects = Counter(label: "notify_redis_connects_total")
    private let connectFailures = Counter(label: "notify_redis_connect_failures_total")

    init(configuration: RedisClientConfiguration, eventLoopGroup: any EventLoopGroup, logger: Logger) {
        self.configuration = configuration
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
        self.backoff = ReconnectBackoff(
            initialDelayMs: configuration.reconnectInitialDelayMs, maxDelayMs: configuration.reconnectMaxDelayMs)
        self.state = Mutex(State(slots: Array(repeating: Slot(), count: configuration.maxConnections)))
    }

    // MARK: Leasing

    /// Runs `body` with a connection slot held for one command or batch. When the connection turns out to have
    /// closed before anything was sent, `body` runs again on another connection (at most twice more).
    func withLease<T>(_ body: (RedisConnection) async throws -> T) async throws -> T {
        var attempt = 0
        while true {
            let (index, connection) = try await self.lease()
            do {
                defer { self.release(index) }
                return try await body(connection)
            } catch let error as RedisClientError
                where (error == .notSent || error.code == .outboxFull) && attempt < 2
            {
                // Provably not sent: another connection may take it (a full outbox is that connection's alone).
                attempt += 1
            }
        }
    }

    private func lease() async throws -> (Int, RedisConnection) {
        let deadline = NIODeadline.now() + .milliseconds(Int64(self.configuration.acquireTimeoutMs))
        var place: Int?  // this caller's number in line, once it waited
        while true {
            let now = NIODeadline.now()
            var connectIndex: Int?
            var handOvers: [(Waiter, Lease?)] = []
            let decision = self.state.withLock { state in
                self.decide(
                    &state, now: now, deadline: deadline, connectIndex: &connectIndex, handOvers: &handOvers,
                    place: place)
            }
            for (waiter, lease) in handOvers { waiter.promise.succeed(lease) }
            if let connectIndex { self.connect(slot: connectIndex) }
            switch decision {
            case .use(let index, let connection):
                return (index, connection)
            case .fail(let error):
                throw error
            case .wait(let id, let promise, let wakeAt):
                place = id
                if let lease = try await self.wait(id: id, promise: promise, until: min(deadline, wakeAt ?? deadline)) {
                    return lease
                }
            }
        }
    }

    private func decide(
        _ state: inout State, now: NIODeadline, deadline: NIODeadline, connectIndex: inout Int?,
        handOvers: inout [(Waiter, Lease?)], place: Int?
    ) -> Decision {
        if state.isShutdown { return .fail(RedisClientError(.shutdown, "the Redis client is shut down")) }
        let limit = self.configuration.maxInFlightPerConnection
        // Callers already waiting come first: a newcomer may not take a slot one of them is owed. (Free capacity
        // while some wait should not happen, since freed slots go to them at once; if it does, serve them now.)
        handOvers += state.serveWaiters(limit: limit)
        let best = state.waiters.isEmpty ? state.leastBusy(limit: limit) : nil
        var openable: Int?
        var connecting = false
        for index in state.slots.indices {
            let slot = state.slots[index]
            if slot.readyConnection != nil {
                continue
            } else if slot.isConnecting {
                connecting = true
            } else {
                openable = openable ?? index
            }
        }
        // One connect at a time, and none while backing off after failures: during an outage the pool probes
        // Redis at the backoff pace instead of hammering it from every slot.
        let mayConnect = !connecting && now >= state.retryAt
        if let openable, mayConnect, best == nil || state.slots[best!.index].inFlight > 0 {
            state.slots[openable].isConnecting = true
            connectIndex = openable
        }
        if let best {
            state.slots[best.index].inFlight += 1
            return .use(best.index, best.connection)
        }
        if now >= deadline {
            let anyReady = state.slots.contains { $0.readyConnection != nil }
            if !anyReady, let error = state.lastConnectError { return .fail(error) }
            return .fail(
                RedisClientError(
                    .poolExhausted,
                    "all \(state.slots.count) connections busy (\(limit) commands in flight each) for "
                        + "\(self.configuration.acquireTimeoutMs) ms"))
        }
        let id = place ?? state.nextWaiterID
        if place == nil { state.nextWaiterID += 1 }
        let promise = self.eventLoopGroup.any().makePromise(of: Lease?.self)
        state.waiters.enter(Waiter(id: id, promise: promise))
        return .wait(id: id, promise: promise, wakeAt: state.retryAt > now ? state.retryAt : nil)
    }

    /// Waits in line until a slot is handed over (returned), or until `wakeAt`, a wake-up or cancellation (`nil`:
    /// decide again). Exactly one of the hand-over and the timer or cancellation completes the promise: each first
    /// takes the waiter out of the line under the lock.
    private func wait(id: Int, promise: EventLoopPromise<Lease?>, until wakeAt: NIODeadline) async throws -> Lease? {
        let timer = promise.futureResult.eventLoop.scheduleTask(deadline: wakeAt) {
            if self.leaveLine(id, promise: promise) { promise.succeed(nil) }
        }
        let lease = try await withTaskCancellationHandler {
            try await promise.futureResult.get()
        } onCancel: {
            if self.leaveLine(id, promise: promise) { promise.succeed(nil) }
        }
        timer.cancel()
        if Task.isCancelled {
            if let lease { self.release(lease.index) }
            throw CancellationError()
        }
        return lease
    }

    /// Takes waiter `id` (waiting on `promise`) out of the line; `false` when it was already taken.
    private func leaveLine(_ id: Int, promise: EventLoopPromise<Lease?>) -> Bool {
        self.state.withLock { $0.waiters.leave(id, promise: promise) }
    }

    /// Hands the freed slot to the oldest waiter, or frees it.
    private func release(_ index: Int) {
        let handOver = self.state.withLock { state -> (EventLoopPromise<Lease?>, Lease)? in
            if let connection = state.slots[index].readyConnection, let waiter = state.waiters.popFirst() {
                return (waiter.promise, (index, connection))  // the slot stays counted: it changes hands
            }
            state.slots[index].inFlight -= 1
            return nil
        }
        if let (promise, lease) = handOver { promise.succeed(lease) }
    }

    // MARK: Connecting

    private func connect(slot index: Int) {
        RedisConnection.connect(configuration: self.configuration, eventLoop: self.eventLoopGroup.any())
            .whenComplete { result in
                let now = NIODeadline.now()
                let (waiters, closeNow) = self.state.withLock { state -> ([(Waiter, Lease?)], Bool) in
                    state.slots[index].isConnecting = false
                    switch result {
                    case .success(let connection):
                        state.slots[index].connection = connection
                        state.connectFailures = 0
                        state.lastConnectError = nil
                    case .failure(let error):
                        state.connectFailures += 1
                        let delay = self.backoff.delayMs(afterFailures: state.connectFailures)
                        state.retryAt = now + .milliseconds(Int64(delay))
                        state.lastConnectError =
                            error as? RedisClientError ?? RedisClientError(.connectionFailed, "\(error)")
                    }
                    // A new connection serves waiters in line order; on failure they all decide again (and back
                    // off together).
                    let served = state.serveWaiters(limit: self.configuration.maxInFlightPerConnection)
                    return (served + state.takeWaiters().map { ($0, nil) }, state.isShutdown)
                }
                switch result {
                case .success(let connection):
                    self.connects.increment()
                    self.logger.debug("redis connected", metadata: ["redis.slot": "\(index)"])
                    connection.closeFuture.whenComplete { _ in self.connectionClosed(connection, slot: index) }
                    if closeNow { connection.channel.close(promise: nil) }
                case .failure(let error):
                    self.connectFailures.increment()
                    self.logger.warning(
                        "redis connect failed", metadata: ["redis.slot": "\(index)", "error": "\(error)"])
                }
                for (waiter, lease) in waiters { waiter.promise.succeed(lease) }
            }
    }

    private func connectionClosed(_ connection: RedisConnection, slot index: Int) {
        let waiters = self.state.withLock { state -> [Waiter] in
            guard state.slots[index].connection === connection else { return [] }
            state.slots[index].connection = nil
            return state.takeWaiters()
        }
        self.logger.debug("redis connection closed", metadata: ["redis.slot": "\(index)"])
        waiters.forEach { $0.promise.succeed(nil) }
    }

    // MARK: Maintenance

    /// PINGs every idle connection; a connection that does not answer in time is closed (and reopened on demand).
    func checkHealth() async {
        let idle = self.state.withLock { state in
            state.slots.compactMap { $0.inFlight == 0 ? $0.readyConnection : nil }
        }
        for connection in idle {
            _ = try? await connection.sendRaw(RedisCommand("PING"))
        }
    }

    /// Closes every connection; later leases fail with `shutdown`.
    func shutdown() async {
        let (connections, waiters) = self.state.withLock { state in
            state.isShutdown = true
            return (state.slots.compactMap(\.connection), state.takeWaiters())
        }
        waiters.forEach { $0.promise.succeed(nil) }
        for connection in connections {
            await connection.close()
        }
    }

    /// Connections open now, for tests and metrics.
    var openConnectionCount: Int {
        self.state.withLock { $0.slots.count { $0.readyConnection != nil } }
    }

    /// Callers waiting for a slot now, for tests and metrics.
    var waitingCount: Int {
        self.state.withLock { $0.waiters.count }
    }
}

extension RedisConnectionPool.State {
    /// The ready connection with the fewest commands in flight, below `limit`.
    fileprivate func leastBusy(limit: Int) -> RedisConnectionPool.Lease? {
        var best: RedisConnectionPool.Lease?
        for index in self.slots.indices {
            guard let connection = self.slots[index].readyConnection, self.slots[index].inFlight < limit else {
                continue
            }
            if best == nil || self.slots[index].inFlight < self.slots[best!.index].inFlight {
                best = (index, connection)
            }
        }
        return best
    }

    /// Hands free capacity to waiters, oldest first.
    fileprivate mutating func serveWaiters(limit: Int) -> [(RedisConnectionPool.Waiter, RedisConnectionPool.Lease?)] {
        var served: [(RedisConnectionPool.Waiter, RedisConnectionPool.Lease?)] = []
        while !self.waiters.isEmpty, let lease = self.leastBusy(limit: limit), let waiter = self.waiters.popFirst() {
            self.slots[lease.index].inFlight += 1
            served.append((waiter, lease))
        }
        return served
    }

    fileprivate mutating func takeWaiters() -> [RedisConnectionPool.Waiter] {
        self.waiters.removeAll()
    }
}
