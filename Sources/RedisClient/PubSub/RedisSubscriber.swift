import Logging
import Metrics
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// One pub/sub connection shared by many subscriptions: SUBSCRIBE, PSUBSCRIBE and SSUBSCRIBE.
///
/// Channels are added and removed while messages flow; a channel stays subscribed while any subscription needs it.
/// `run()` owns the connection: it connects, subscribes every channel wanted, and after a disconnect reconnects
/// with backoff and subscribes them all again. Messages published while disconnected are lost (pub/sub is
/// fire-and-forget); callers that need them replay from durable storage after ``subscribe(to:kind:)`` returns.
public final class RedisSubscriber: Service, Sendable {
    private struct Key: Hashable {
        var kind: RedisSubscriptionKind
        var name: String
    }

    private enum Target {
        /// An `AsyncStream`: with a signal, it ends at the first lost message instead of skipping it.
        case stream(AsyncStream<RedisPubSubMessage>.Continuation, gapSignal: RedisSubscription.EndSignal?)
        /// A sink: always ends at the first lost message.
        case sink(any RedisMessageSink)
    }

    private struct Entry {
        var id: Int
        var keys: [Key]
        var target: Target

        var isGapIntolerant: Bool {
            switch self.target {
            case .stream(_, let gapSignal): gapSignal != nil
            case .sink: true
            }
        }
    }

    private struct State {
        var connection: RedisConnection?
        var entries: [Int: Entry] = [:]
        var routes: [Key: Set<Int>] = [:]
        /// Each channel's SUBSCRIBE on the current connection: a later subscriber to the same channel waits for
        /// the same confirmation instead of returning before Redis confirmed it.
        var confirmations: [Key: EventLoopFuture<Void>] = [:]
        var nextID = 0
        /// Subscribers waiting for a connection, by subscription id (removed when that subscription ends).
        var readyWaiters: [Int: EventLoopPromise<Void>] = [:]
        var isShutdown = false
    }

    private let configuration: RedisClientConfiguration
    private let eventLoopGroup: any EventLoopGroup
    private let logger: Logger
    private let state = Mutex(State())
    private let dropped = Counter(label: "notify_redis_pubsub_dropped_total")
    private let reconnects = Counter(label: "notify_redis_pubsub_connects_total")

    public init(
        configuration: RedisClientConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger
    ) {
        self.configuration = configuration
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
    }

    // MARK: Subscribing

    /// Subscribes to `channels` (or patterns) and returns once Redis confirmed, so any message published after
    /// the return is delivered.
    ///
    /// With `endOnGap`, the subscription ends instead of skipping messages: when its buffer is full (a slow
    /// reader) or when the connection drops (messages published meanwhile are gone). ``RedisSubscription/endReason``
    /// then tells why, so a reader backed by durable storage can replay from there.
    /// `bufferLimit` overrides the configured ``RedisClientConfiguration/subscriptionBufferLimit`` for this one.
    public func subscribe(
        to channels: [String], kind: RedisSubscriptionKind = .channel, endOnGap: Bool = false,
        bufferLimit: Int? = nil
    ) async throws -> RedisSubscription {
        let signal = RedisSubscription.EndSignal()
        let (stream, continuation) = AsyncStream.makeStream(
            of: RedisPubSubMessage.self,
            bufferingPolicy: .bufferingOldest(max(1, bufferLimit ?? self.configuration.subscriptionBufferLimit)))
        let (id, confirmed) = try self.register(
            channels, kind: kind, target: .stream(continuation, gapSignal: endOnGap ? signal : nil))
        continuation.onTermination = { _ in self.remove(id) }
        do {
            try await Self.withTimeout(confirmed, ms: self.configuration.acquireTimeoutMs)
        } catch {
            continuation.finish()
            throw error
        }
        return RedisSubscription(stream: stream, continuation: continuation, signal: signal)
    }

    /// Subscribes to `channels` (or patterns), delivering to `sink`, and returns once Redis confirmed, so any
    /// message published after the return is delivered. The subscription ends at the first message it would lose
    /// (the sink's buffer is full, the connection dropped) and tells the sink why.
    public func subscribe(
        to channels: [String], kind: RedisSubscriptionKind = .channel, sink: any RedisMessageSink
    ) async throws -> RedisSinkSubscription {
        let (id, confirmed) = try self.register(channels, kind: kind, target: .sink(sink))
        do {
            try await Self.withTimeout(confirmed, ms: self.configuration.acquireTimeoutMs)
        } catch {
            self.remove(id)
            throw error
        }
        return RedisSinkSubscription(id: id, subscriber: self)
    }

    /// Adds a subscription; returns its id and the confirmation of its channels by Redis.
    private func register(
        _ channels: [String], kind: RedisSubscriptionKind, target: Target
    ) throws -> (Int, EventLoopFuture<Void>) {
        let keys = Array(Set(channels)).map { Key(kind: kind, name: $0) }
        let outcome = self.state.withLock { state -> Result<(Int, EventLoopFuture<Void>), RedisClientError> in
            if state.isShutdown { return .failure(RedisClientError(.shutdown, "the subscriber is shut down")) }
            let id = state.nextID
            state.nextID += 1
            state.entries[id] = Entry(id: id, keys: keys, target: target)
            for key in keys {
                state.routes[key, default: []].insert(id)
            }
            if let connection = state.connection, connection.isActive {
                var waits: [EventLoopFuture<Void>] = []
                for key in keys {
                    if let confirmation = state.confirmations[key] {
                        waits.append(confirmation)
                    } else {
                        let confirmation = Self.subscribe(key, on: connection)
                        state.confirmations[key] = confirmation
                        waits.append(confirmation)
                    }
                }
                return .success((id, EventLoopFuture.andAllSucceed(waits, on: connection.channel.eventLoop)))
            }
            let promise = self.eventLoopGroup.any().makePromise(of: Void.self)
            state.readyWaiters[id] = promise
            return .success((id, promise.futureResult))
        }
        return try outcome.get()
    }

    /// Channels (and patterns) subscribed now, for tests and ops.
    public var subscribedCount: Int {
        self.state.withLock { $0.routes.count }
    }

    /// Whether the pub/sub connection is up (readiness: live delivery needs it).
    public var isConnected: Bool {
        self.state.withLock { $0.connection?.isActive == true }
    }

    func remove(_ id: Int) {
        let waiter = self.state.withLock { state -> EventLoopPromise<Void>? in
            let waiter = state.readyWaiters.removeValue(forKey: id)
            guard let entry = state.entries.removeValue(forKey: id) else { return waiter }
            var removed: [Key] = []
            for key in entry.keys {
                state.routes[key]?.remove(id)
                if state.routes[key]?.isEmpty == true {
                    state.routes.removeValue(forKey: key)
                    state.confirmations.removeValue(forKey: key)
                    removed.append(key)
                }
            }
            if let connection = state.connection, connection.isActive {
                // Fire and forget: the confirmations are matched by the handler; a failure closes the connection,
                // and the resubscription after reconnect leaves these channels out.
                for command in Self.unsubscribeCommands(removed) {
                    _ = connection.sendFuture(command.command, replies: command.replies)
                }
            }
            return waiter
        }
        // A subscriber that gave up (timeout) leaves no promise behind for the next connection to complete.
        waiter?.fail(RedisClientError(.connectionFailed, "the subscription ended before Redis confirmed it"))
    }

    // MARK: Connection loop

    public func run() async throws {
        var failures = 0
        let backoff = ReconnectBackoff(
            initialDelayMs: self.configuration.reconnectInitialDelayMs,
            maxDelayMs: self.configuration.reconnectMaxDelayMs)
        await withGracefulShutdownHandler {
            while !Task.isCancelled, !self.state.withLock({ $0.isShutdown }) {
                do {
                    let connection = try await RedisConnection.connect(
                        configuration: self.configuration, eventLoop: self.eventLoopGroup.any(),
                        onPush: { push in self.dispatch(push) }
                    ).get()
                    failures = 0
                    self.reconnects.increment()
                    do {
                        try await self.resubscribe(on: connection)
                    } catch {
                        // Close it: left open, it would go on delivering next to the next connection's copies.
                        connection.channel.close(promise: nil)
                        throw error
                    }
                    await self.watch(connection)
                    self.endGapIntolerant(.disconnected)
                } catch {
                    failures += 1
                    self.logger.warning("redis subscriber connection failed", metadata: ["error": "\(error)"])
                }
                self.state.withLock { $0.connection = nil }
                let delay = backoff.delayMs(afterFailures: max(failures, 1))
                try? await Task.sleep(for: .milliseconds(delay))
            }
        } onGracefulShutdown: {
            self.shutdown()
        }
        self.shutdown()
    }

    /// Ends every subscription and closes the connection.
    public func shutdown() {
        let (connection, entries, waiters) = self.state.withLock { state in
            state.isShutdown = true
            let taken = (state.connection, Array(state.entries.values), Array(state.readyWaiters.values))
            state.readyWaiters = [:]
            return taken
        }
        connection?.channel.close(promise: nil)
        waiters.forEach { $0.fail(RedisClientError(.shutdown, "the subscriber is shut down")) }
        for entry in entries {
            self.end(entry, .shutdown)
        }
    }

    /// Ends one subscription by itself, for `reason`. Outside the lock: a stream's termination handler (and
    /// ``remove(_:)`` for a sink) take it.
    private func end(_ entry: Entry, _ reason: RedisSubscription.EndReason) {
        switch entry.target {
        case .stream(let continuation, let gapSignal):
            gapSignal?.set(reason)
            continuation.finish()
        case .sink(let sink):
            sink.end(reason)
            self.remove(entry.id)
        }
    }

    /// Ends the subscriptions that must not skip messages, after the connection dropped: messages published
    /// until the resubscription are lost.
    private func endGapIntolerant(_ reason: RedisSubscription.EndReason) {
        let ended = self.state.withLock { state in
            state.entries.values.filter(\.isGapIntolerant)
        }
        for entry in ended {
            self.end(entry, reason)
        }
    }

    /// Subscribes every wanted channel on a new connection, one command per channel so that a channel Redis
    /// refuses (an ACL, a moved slot) fails alone: its subscriptions end (they would fail the same way on every
    /// reconnect) and the others go on. Throws only when the connection itself fails.
    private func resubscribe(on connection: RedisConnection) async throws {
        let (keys, confirmations) = self.state.withLock { state in
            state.connection = connection
            state.confirmations = [:]
            let keys = Array(state.routes.keys)
            let confirmations = keys.map { Self.subscribe($0, on: connection) }
            for (key, confirmation) in zip(keys, confirmations) { state.confirmations[key] = confirmation }
            return (keys, confirmations)
        }
        var refused: [Key: (error: any Error, confirmation: EventLoopFuture<Void>)] = [:]
        for (key, confirmation) in zip(keys, confirmations) {
            do {
                try await confirmation.get()
            } catch let error as RedisClientError where error.code == .errorReply {
                refused[key] = (error, confirmation)
            }
        }
        let (waiters, ended) = self.state.withLock { state -> ([(EventLoopPromise<Void>, (any Error)?)], [Entry]) in
            var ended: [Entry] = []
            for (key, refusal) in refused where state.confirmations[key] === refusal.confirmation {
                // Still the refused subscription (its subscribers did not leave and come back meanwhile).
                for id in state.routes.removeValue(forKey: key) ?? [] {
                    if let entry = state.entries[id] { ended.append(entry) }
                }
                state.confirmations.removeValue(forKey: key)
            }
            let waiters = state.readyWaiters.map { id, promise in
                (promise, state.entries[id]?.keys.lazy.compactMap { refused[$0]?.error }.first)
            }
            state.readyWaiters = [:]
            return (waiters, ended)
        }
        for (key, refusal) in refused {
            self.logger.warning(
                "redis refused a subscription; its subscribers end",
                metadata: ["redis.channel": "\(key.name)", "error": "\(refusal.error)"])
        }
        for entry in ended {
            self.end(entry, .disconnected)
        }
        for (promise, error) in waiters {
            if let error { promise.fail(error) } else { promise.succeed() }
        }
        self.logger.debug("redis subscriber ready", metadata: ["redis.channels": "\(self.subscribedCount)"])
    }

    /// Returns when `connection` closes, pinging it meanwhile so a half-open socket is noticed.
    private func watch(_ connection: RedisConnection) async {
        let interval = Duration.milliseconds(self.configuration.healthCheckIntervalMs)
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await withTaskCancellationHandler {
                    try? await connection.closeFuture.get()
                } onCancel: {
                    connection.channel.close(promise: nil)
                }
            }
            group.addTask {
                while (try? await Task.sleep(for: interval)) != nil {
                    _ = try? await connection.sendRaw(RedisCommand("PING"))
                }
            }
            await group.next()
            group.cancelAll()
        }
    }

    private func dispatch(_ push: RedisPushMessage) {
        guard case .message(let message) = push else { return }
        let key = Key(kind: message.kind, name: message.pattern ?? message.channel)
        // Only the lookup holds the process-wide lock; the yields (which wake readers) happen outside it. An
        // entry removed meanwhile has a finished continuation (or a cancelled sink), which ignores the message.
        let targets = self.state.withLock { state -> [Entry] in
            guard let ids = state.routes[key] else { return [] }
            return ids.compactMap { state.entries[$0] }
        }
        var lost = 0
        var overflowed: [Entry] = []
        for entry in targets {
            switch entry.target {
            case .stream(let continuation, _):
                guard case .dropped = continuation.yield(message) else { continue }
            case .sink(let sink):
                guard !sink.receive(message) else { continue }
            }
            lost += 1
            if entry.isGapIntolerant { overflowed.append(entry) }
        }
        if lost > 0 { self.dropped.increment(by: lost) }
        for entry in overflowed {
            self.end(entry, .overflow)
        }
    }

    // MARK: Commands

    /// One SUBSCRIBE (PSUBSCRIBE, SSUBSCRIBE) for one channel: one reply, so a refusal fails this channel alone.
    private static func subscribe(_ key: Key, on connection: RedisConnection) -> EventLoopFuture<Void> {
        connection.sendFuture(RedisCommand(key.kind.subscribeCommand, [.string(key.name)]), replies: 1)
            .flatMapThrowing { replies in
                for reply in replies {
                    if case .error(let message) = reply { throw RedisClientError(.errorReply, message) }
                }
            }
    }

    private static func unsubscribeCommands(_ keys: [Key]) -> [(command: RedisCommand, replies: Int)] {
        var commands: [(RedisCommand, Int)] = []
        for kind in [RedisSubscriptionKind.channel, .pattern, .shard] {
            let names = keys.filter { $0.kind == kind }.map { RedisArgument.string($0.name) }
            guard !names.isEmpty else { continue }
            if kind == .shard {
                // One channel per command: in a cluster, channels of different slots cannot share SSUNSUBSCRIBE.
                commands += names.map { (RedisCommand(kind.unsubscribeCommand, [$0]), 1) }
            } else {
                commands.append((RedisCommand(kind.unsubscribeCommand, names), names.count))
            }
        }
        return commands
    }

    private static func withTimeout(_ future: EventLoopFuture<Void>, ms: Int) async throws {
        let promise = future.eventLoop.makePromise(of: Void.self)
        let timer = future.eventLoop.scheduleTask(in: .milliseconds(Int64(ms))) {
            promise.fail(RedisClientError(.connectionFailed, "subscriber not connected within \(ms) ms"))
        }
        future.cascade(to: promise)
        defer { timer.cancel() }
        try await promise.futureResult.get()
    }
}
