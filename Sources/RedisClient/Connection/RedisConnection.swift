import Logging
import NIOCore
import NIOPosix
import Synchronization

/// One connection to Redis. Many commands may be in flight at once (pipelining); replies come back in order.
///
/// Safe to use from any task. Requests from all tasks gather in an outbox; one event-loop task writes everything
/// gathered so far and flushes once, so concurrent callers share syscalls and cost one hop to the loop each
/// at most.
public final class RedisConnection: Sendable {
    private struct Outbox {
        var requests: [RedisRequest] = []
        var bytes = 0
        var drainScheduled = false
    }

    /// The NIO channel that owns the socket.
    let channel: any Channel
    private let outbox = Mutex(Outbox())
    private let maxOutboxBytes: Int

    private init(channel: any Channel, maxOutboxBytes: Int) {
        self.channel = channel
        self.maxOutboxBytes = maxOutboxBytes
    }

    /// Whether the socket is still open.
    public var isActive: Bool { self.channel.isActive }

    /// Completes when the connection has closed, for whatever reason.
    public var closeFuture: EventLoopFuture<Void> { self.channel.closeFuture }

    // MARK: Connecting

    /// Connects and runs the handshake (AUTH, SELECT, CLIENT SETNAME) that `configuration` asks for.
    ///
    /// - Parameter onPush: set for a subscriber connection; receives pub/sub messages.
    static func connect(
        configuration: RedisClientConfiguration,
        eventLoop: any EventLoop,
        onPush: (@Sendable (RedisPushMessage) -> Void)? = nil
    ) -> EventLoopFuture<RedisConnection> {
        let url = configuration.url
        let commandTimeout = TimeAmount.milliseconds(Int64(configuration.commandTimeoutMs))
        let writable = WritableSignal()
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(.milliseconds(Int64(configuration.connectTimeoutMs)))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        RedisChannelHandler(commandTimeout: commandTimeout, onPush: onPush, writable: writable))
                }
            }
        return bootstrap.connect(host: url.host, port: url.port)
            .flatMapErrorThrowing { error in
                if case ChannelError.connectTimeout = error {
                    throw RedisClientError(.connectTimeout, "connecting to \(url.host):\(url.port) timed out")
                }
                throw RedisClientError(.connectionFailed, "connecting to \(url.host):\(url.port): \(error)")
            }
            .flatMap { channel in
                let connection = RedisConnection(channel: channel, maxOutboxBytes: configuration.maxOutboxBytes)
                writable.set { connection.scheduleDrain() }
                // Never empty (it ends with PING): a connection only counts as made once Redis answered on it. A
                // server at maxclients accepts, writes an error and closes; that must count as a failed connect
                // (and back off), not as a success that resets the backoff.
                let handshake = Self.handshake(for: configuration)
                return connection.sendFuture(batch: handshake).flatMapThrowing { replies in
                    for reply in replies {
                        if case .error(let message) = reply {
                            throw RedisClientError(.connectionFailed, "handshake refused: \(message)")
                        }
                    }
                    return connection
                }.flatMapErrorThrowing { error in
                    channel.close(promise: nil)
                    if let error = error as? RedisClientError, error.code == .connectionFailed { throw error }
                    throw RedisClientError(.connectionFailed, "handshake failed: \(error)")
                }
            }
    }

    private static func handshake(for configuration: RedisClientConfiguration) -> [RedisCommand] {
        var commands: [RedisCommand] = []
        let url = configuration.url
        if let password = url.password {
            if let user = url.user {
                commands.append(RedisCommand("AUTH", .string(user), .string(password)))
            } else {
                commands.append(RedisCommand("AUTH", .string(password)))
            }
        }
        if url.database != 0 {
            commands.append(RedisCommand("SELECT", .integer(url.database)))
        }
        if let name = configuration.clientName {
            commands.append(RedisCommand("CLIENT", "SETNAME", .string(name)))
        }
        commands.append(RedisCommand("PING"))
        return commands
    }

    // MARK: Commands

    /// Sends one command. Throws ``RedisClientError`` with code `errorReply` when Redis answers with an error.
    public func send(_ command: RedisCommand) async throws -> RedisValue {
        try await self.sendFuture(command).get().throwingIfError()
    }

    /// Sends one command and returns its reply as is, error replies included.
    public func sendRaw(_ command: RedisCommand) async throws -> RedisValue {
        try await self.sendFuture(command).get()
    }

    /// Sends `commands` in one write and returns their replies in order. Error replies stay in the array as
    /// ``RedisValue/error(_:)``, so one failed command does not hide the others' results.
    public func send(batch commands: [RedisCommand]) async throws -> [RedisValue] {
        try await self.sendFuture(batch: commands).get()
    }

    func sendFuture(_ command: RedisCommand) -> EventLoopFuture<RedisValue> {
        let promise = self.channel.eventLoop.makePromise(of: RedisValue.self)
        self.enqueue(RedisRequest(bytes: command.encoded, reply: .single(promise)))
        return promise.futureResult
    }

    func sendFuture(batch commands: [RedisCommand]) -> EventLoopFuture<[RedisValue]> {
        guard !commands.isEmpty else { return self.channel.eventLoop.makeSucceededFuture([]) }
        let promise = self.channel.eventLoop.makePromise(of: [RedisValue].self)
        var bytes = ByteBufferAllocator().buffer(capacity: commands.reduce(0) { $0 + $1.encoded.readableBytes })
        for command in commands {
            bytes.writeImmutableBuffer(command.encoded)
        }
        let collector = RedisBatchReplies(expected: commands.count, promise: promise)
        self.enqueue(RedisRequest(bytes: bytes, reply: .batch(collector)))
        return promise.futureResult
    }

    /// Sends one command that Redis answers with `replies` replies (e.g. SUBSCRIBE with several channels).
    func sendFuture(_ command: RedisCommand, replies: Int) -> EventLoopFuture<[RedisValue]> {
        let promise = self.channel.eventLoop.makePromise(of: [RedisValue].self)
        let collector = RedisBatchReplies(expected: replies, promise: promise)
        self.enqueue(RedisRequest(bytes: command.encoded, reply: .batch(collector)))
        return promise.futureResult
    }

    // MARK: Writing

    private enum Admission {
        case drain, queued, full
    }

    private func enqueue(_ request: RedisRequest) {
        let size = request.bytes.readableBytes
        let admission = self.outbox.withLock { outbox -> Admission in
            // One request always fits (its bytes exist already); beyond that the outbox holds at most the limit.
            if !outbox.requests.isEmpty, outbox.bytes + size > self.maxOutboxBytes { return .full }
            outbox.requests.append(request)
            outbox.bytes += size
            guard !outbox.drainScheduled else { return .queued }
            outbox.drainScheduled = true
            return .drain
        }
        switch admission {
        case .drain: self.channel.eventLoop.execute { self.drainOutbox() }
        case .queued: break
        case .full:
            request.fail(
                RedisClientError(
                    .outboxFull, "\(self.maxOutboxBytes) bytes already wait for Redis to read them on this connection"))
        }
    }

    /// Drains the outbox soon (the socket became writable again, or closed).
    fileprivate func scheduleDrain() {
        let schedule = self.outbox.withLock { outbox -> Bool in
            guard !outbox.drainScheduled, !outbox.requests.isEmpty else { return false }
            outbox.drainScheduled = true
            return true
        }
        if schedule { self.channel.eventLoop.execute { self.drainOutbox() } }
    }

    /// Writes every request gathered so far, in order, and flushes once. Runs on the event loop. While the socket
    /// is not writable (Redis reads slower than we write) requests stay in the outbox, which is bounded, instead of
    /// piling up in the channel's unbounded write buffer; the handler drains again when it turns writable.
    private func drainOutbox() {
        let isActive = self.channel.isActive
        let writable = self.channel.isWritable
        var requests: [RedisRequest] = []
        self.outbox.withLock { outbox in
            outbox.drainScheduled = false
            guard writable || !isActive else { return }
            swap(&requests, &outbox.requests)
            outbox.bytes = 0
        }
        // A closed channel has already removed its handlers, so a write would fail at the pipeline's head and
        // never reach the handler that completes the request: fail them here instead of leaking their promises.
        guard isActive else {
            for request in requests {
                request.fail(.notSent)
            }
            return
        }
        for request in requests {
            self.channel.write(request, promise: nil)
        }
        self.channel.flush()
    }

    /// Closes the connection; commands in flight fail with `connectionClosed`.
    public func close() async {
        try? await self.channel.close()
    }
}

/// Lets the channel handler (made before its connection) tell the connection that the socket can take writes
/// again, or closed.
final class WritableSignal: Sendable {
    private let action = Mutex<(@Sendable () -> Void)?>(nil)

    func set(_ action: @escaping @Sendable () -> Void) {
        self.action.withLock { $0 = action }
    }

    func fire() {
        self.action.withLock { $0 }?()
    }
}
