import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// An async Redis client: a pool of pipelined connections, batches and Lua scripts.
///
/// Commands may be sent from any number of tasks at once; they share connections and go out in coalesced writes.
/// As a `Service`, `run()` keeps the pool healthy (PING on idle connections) and closes it on graceful shutdown;
/// the client also works without `run()`, connecting lazily on first use.
public final class RedisClient: Service, Sendable {
    /// The settings the client was made with.
    public let configuration: RedisClientConfiguration
    private let pool: RedisConnectionPool
    private let logger: Logger

    public init(
        configuration: RedisClientConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger
    ) {
        self.configuration = configuration
        self.logger = logger
        self.pool = RedisConnectionPool(configuration: configuration, eventLoopGroup: eventLoopGroup, logger: logger)
    }

    // MARK: Service

    public func run() async throws {
        let interval = Duration.milliseconds(self.configuration.healthCheckIntervalMs)
        // The loop only sleeps and pings, so it may simply be cancelled on graceful shutdown. The pool closes after
        // it: services that depend on Redis are shut down before this one (ServiceGroup order).
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: interval)
                await self.pool.checkHealth()
            }
        }
        await self.pool.shutdown()
    }

    /// Closes every connection; later commands fail with `shutdown`.
    public func shutdown() async {
        await self.pool.shutdown()
    }

    /// Runs `body` with this client, then shuts it down, also when `body` throws: for short-lived clients
    /// (commands, benchmarks, tests) that do not run as a service.
    public func closing<T>(_ body: (RedisClient) async throws -> T) async throws -> T {
        let result: T
        do {
            result = try await body(self)
        } catch {
            await self.shutdown()
            throw error
        }
        await self.shutdown()
        return result
    }

    // MARK: Commands

    /// Sends one command. Throws ``RedisClientError`` (code `errorReply` when Redis answers with an error).
    @discardableResult
    public func send(_ command: RedisCommand) async throws -> RedisValue {
        try await self.pool.withLease { try await $0.send(command) }
    }

    /// Sends one command built from its name and arguments.
    @discardableResult
    public func send(_ name: String, _ arguments: RedisArgument...) async throws -> RedisValue {
        try await self.send(RedisCommand(name, arguments))
    }

    /// Sends `commands` in one write on one connection and returns their replies in order; error replies stay
    /// in the array.
    public func send(batch commands: [RedisCommand]) async throws -> [RedisValue] {
        try await self.pool.withLease { try await $0.send(batch: commands) }
    }

    /// Runs `body` with one connection, for commands that must share it (e.g. a pipeline built step by step).
    public func withConnection<T>(_ body: (RedisConnection) async throws -> T) async throws -> T {
        try await self.pool.withLease(body)
    }

    // MARK: Scripts

    /// Calls `script` by EVALSHA; on `NOSCRIPT` (the script cache was flushed, e.g. by a restart) sends it with EVAL.
    @discardableResult
    public func eval(_ script: RedisScript, keys: [RedisArgument], arguments: [RedisArgument]) async throws
        -> RedisValue
    {
        let reply = try await self.pool.withLease {
            try await $0.sendRaw(script.evalSHA(keys: keys, arguments: arguments))
        }
        if case .error(let message) = reply, message.hasPrefix("NOSCRIPT") {
            self.logger.debug("script not cached, sending source", metadata: ["redis.script": "\(script.sha1)"])
            return try await self.send(script.eval(keys: keys, arguments: arguments))
        }
        return try reply.throwingIfError()
    }

    /// Calls `script` once per element of `calls`, pipelined in one write; error replies stay in the array.
    /// Calls that met `NOSCRIPT` are loaded and sent again, so the result never shows `NOSCRIPT`.
    public func eval(_ script: RedisScript, batch calls: [RedisScriptCall]) async throws -> [RedisValue] {
        var replies = try await self.send(batch: calls.map { script.evalSHA(keys: $0.keys, arguments: $0.arguments) })
        let missing = replies.indices.filter { replies[$0].errorMessage?.hasPrefix("NOSCRIPT") == true }
        guard !missing.isEmpty else { return replies }
        try await self.send(RedisCommand("SCRIPT", "LOAD", .string(script.source)))
        let retried = try await self.send(
            batch: missing.map { script.evalSHA(keys: calls[$0].keys, arguments: calls[$0].arguments) })
        for (index, reply) in zip(missing, retried) {
            replies[index] = reply
        }
        return replies
    }

    /// Loads `script` into the script cache (e.g. at startup, so readiness can report it).
    public func load(_ script: RedisScript) async throws {
        let reply = try await self.send(RedisCommand("SCRIPT", "LOAD", .string(script.source)))
        guard reply.string == script.sha1 else {
            throw RedisClientError(.unexpectedReply, "SCRIPT LOAD returned another SHA1")
        }
    }

    // MARK: Introspection

    /// Connections open now.
    public var openConnectionCount: Int { self.pool.openConnectionCount }

    /// Callers waiting for a connection slot now (all connections at their in-flight limit).
    public var waitingCount: Int { self.pool.waitingCount }
}
