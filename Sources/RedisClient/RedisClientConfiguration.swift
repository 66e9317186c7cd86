import Configuration

/// Settings of the Redis client (connections, timeouts, pool, reconnect).
public struct RedisClientConfiguration: Sendable {
    /// Where to connect.
    public var url: RedisURL
    /// Most connections the pool opens; connections are opened lazily, when load asks for them.
    public var maxConnections: Int
    /// Most commands in flight on one connection; past it callers wait for a slot (backpressure).
    public var maxInFlightPerConnection: Int
    /// How long a caller may wait for a connection slot (and for a reconnect) before `poolExhausted`.
    public var acquireTimeoutMs: Int
    /// Limit for TCP connect plus handshake.
    public var connectTimeoutMs: Int
    /// Limit for any one reply; a late reply closes the connection.
    public var commandTimeoutMs: Int
    /// First delay before reconnecting after a failure; doubles up to ``reconnectMaxDelayMs``.
    public var reconnectInitialDelayMs: Int
    /// Cap of the reconnect delay.
    public var reconnectMaxDelayMs: Int
    /// How often idle pooled connections are checked with PING (by the pool's `run()`).
    public var healthCheckIntervalMs: Int
    /// Messages buffered per subscription before new ones are dropped (a stalled consumer must not grow memory).
    public var subscriptionBufferLimit: Int
    /// Name set with CLIENT SETNAME, shown by CLIENT LIST.
    public var clientName: String?
    /// Most bytes of commands one connection holds while Redis does not read them (its socket is full); past it
    /// new commands fail at once with `outboxFull` instead of growing memory.
    public var maxOutboxBytes: Int

    public init(
        url: RedisURL = RedisURL(),
        maxConnections: Int = 4,
        maxInFlightPerConnection: Int = 4096,
        acquireTimeoutMs: Int = 2_000,
        connectTimeoutMs: Int = 2_000,
        commandTimeoutMs: Int = 5_000,
        reconnectInitialDelayMs: Int = 50,
        reconnectMaxDelayMs: Int = 2_000,
        healthCheckIntervalMs: Int = 5_000,
        subscriptionBufferLimit: Int = 10_000,
        clientName: String? = nil,
        maxOutboxBytes: Int = 64 << 20
    ) {
        self.url = url
        self.maxConnections = max(1, maxConnections)
        self.maxInFlightPerConnection = max(1, maxInFlightPerConnection)
        self.acquireTimeoutMs = acquireTimeoutMs
        self.connectTimeoutMs = connectTimeoutMs
        self.commandTimeoutMs = commandTimeoutMs
        self.reconnectInitialDelayMs = reconnectInitialDelayMs
        self.reconnectMaxDelayMs = reconnectMaxDelayMs
        self.healthCheckIntervalMs = healthCheckIntervalMs
        self.subscriptionBufferLimit = subscriptionBufferLimit
        self.clientName = clientName
        self.maxOutboxBytes = max(1, maxOutboxBytes)
    }

    /// Reads the settings from `config` (scoped to the client, e.g. `redis`), with the defaults above.
    public init(config: ConfigReader) throws(RedisClientError) {
        let defaults = RedisClientConfiguration()
        let urlText = config.string(forKey: "url", isSecret: true, default: "redis://127.0.0.1:6379")
        self.init(
            url: try RedisURL(urlText),
            maxConnections: config.int(forKey: "maxConnections", default: defaults.maxConnections),
            maxInFlightPerConnection: config.int(
                forKey: "maxInFlightPerConnection", default: defaults.maxInFlightPerConnection),
            acquireTimeoutMs: config.int(forKey: "acquireTimeoutMs", default: defaults.acquireTimeoutMs),
            connectTimeoutMs: config.int(forKey: "connectTimeoutMs", default: defaults.connectTimeoutMs),
            commandTimeoutMs: config.int(forKey: "commandTimeoutMs", default: defaults.commandTimeoutMs),
            reconnectInitialDelayMs: config.int(
                forKey: "reconnectInitialDelayMs", default: defaults.reconnectInitialDelayMs),
            reconnectMaxDelayMs: config.int(forKey: "reconnectMaxDelayMs", default: defaults.reconnectMaxDelayMs),
            healthCheckIntervalMs: config.int(
                forKey: "healthCheckIntervalMs", default: defaults.healthCheckIntervalMs),
            subscriptionBufferLimit: config.int(
                forKey: "subscriptionBufferLimit", default: defaults.subscriptionBufferLimit),
            clientName: config.string(forKey: "clientName"),
            maxOutboxBytes: config.int(forKey: "maxOutboxBytes", default: defaults.maxOutboxBytes)
        )
    }
}
