import Logging
import Metrics
import NIOCore
import Synchronization

/// A bounded set of pipelined connections, opened lazily and reopened with backoff after failures.
///
/// Each command leases the least busy connection (many commands share a connection, so leases are cheap); a new
/// connection is opened only when every open one is busy. Past ``RedisClientConfiguration/maxInFlightPerConnection``
/// on every connection, callers wait for a slot up to the acquire timeout, then get `poolExhausted`.
final class RedisConnectionPool: Sendable {
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
        var waiters: [Int: EventLoopPromise<Void>] = [:]
        var nextWaiterID = 0
        var lastConnectError: RedisClientError?
        /// Connect failures in a row, over all slots: an outage backs off the pool, not each slot on its own.
        var connectFailures = 0
        var retryAt = NIODeadline.uptimeNanoseconds(0)
        var isShutdown = false
    }

    private enum Decision {
        case use(Int, RedisConnection)
        case wait(id: Int, promise: EventLoopPromise<Void>, wakeAt: NIODeadline?)
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
            } catch let error as RedisClientError where error == .notSent && attempt < 2 {
                attempt += 1
            }
        }
    }

    private func lease() async throws -> (Int, RedisConnection) {
        let deadline = NIODeadline.now() + .milliseconds(Int64(self.configuration.acquireTimeoutMs))
        while true {
            let now = NIODeadline.now()
            var connectIndex: Int?
            let decision = self.state.withLock { state in
                self.decide(&state, now: now, deadline: deadline, connectIndex: &connectIndex)
            }
            if let connectIndex { self.connect(slot: connectIndex) }
            switch decision {
            case .use(let index, let connection):
                return (index, connection)
            case .fail(let error):
                throw error
            case .wait(let id, let promise, let wakeAt):
                try await self.wait(id: id, promise: promise, until: min(deadline, wakeAt ?? deadline))
            }
        }
    }

    private func decide(
        _ state: inout State, now: NIODeadline, deadline: NIODeadline, connectIndex: inout Int?
    ) -> Decision {
        if state.isShutdown { return .fail(RedisClientError(.shutdown, "the Redis client is shut down")) }
        let limit = self.configuration.maxInFlightPerConnection
        var best: (index: Int, connection: RedisConnection)?
        var openable: Int?
        var connecting = false
        for index in state.slots.indices {
            let slot = state.slots[index]
            if let connection = slot.readyConnection {
                if slot.inFlight < limit, best == nil || slot.inFlight < state.slots[best!.index].inFlight {
                    best = (index, connection)
                }
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
        let id = state.nextWaiterID
        state.nextWaiterID += 1
        let promise = self.eventLoopGroup.any().makePromise(of: Void.self)
        state.waiters[id] = promise
        return .wait(id: id, promise: promise, wakeAt: state.retryAt > now ? state.retryAt : nil)
    }

    private func wait(id: Int, promise: EventLoopPromise<Void>, until wakeAt: NIODeadline) async throws {
        let timer = promise.futureResult.eventLoop.scheduleTask(deadline: wakeAt) { promise.succeed() }
        try await withTaskCancellationHandler {
            try await promise.futureResult.get()
        } onCancel: {
            promise.succeed()
        }
        timer.cancel()
        self.state.withLock { _ = $0.waiters.removeValue(forKey: id) }
        try Task.checkCancellation()
    }

    private func release(_ index: Int) {
        let waiters = self.state.withLock { state in
            state.slots[index].inFlight -= 1
            return state.waiters.isEmpty ? [] : state.takeWaiters()
        }
        waiters.forEach { $0.succeed() }
    }

    // MARK: Connecting

    private func connect(slot index: Int) {
        RedisConnection.connect(configuration: self.configuration, eventLoop: self.eventLoopGroup.any())
            .whenComplete { result in
                let now = NIODeadline.now()
                let (waiters, closeNow) = self.state.withLock { state -> ([EventLoopPromise<Void>], Bool) in
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
                    return (state.takeWaiters(), state.isShutdown)
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
                waiters.forEach { $0.succeed() }
            }
    }

    private func connectionClosed(_ connection: RedisConnection, slot index: Int) {
        let waiters = self.state.withLock { state -> [EventLoopPromise<Void>] in
            guard state.slots[index].connection === connection else { return [] }
            state.slots[index].connection = nil
            return state.takeWaiters()
        }
        self.logger.debug("redis connection closed", metadata: ["redis.slot": "\(index)"])
        waiters.forEach { $0.succeed() }
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
        waiters.forEach { $0.succeed() }
        for connection in connections {
            await connection.close()
        }
    }

    /// Connections open now, for tests and metrics.
    var openConnectionCount: Int {
        self.state.withLock { $0.slots.count { $0.readyConnection != nil } }
    }
}

extension RedisConnectionPool.State {
    fileprivate mutating func takeWaiters() -> [EventLoopPromise<Void>] {
        let taken = Array(self.waiters.values)
        self.waiters.removeAll()
        return taken
    }
}
