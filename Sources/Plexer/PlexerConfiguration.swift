import Configuration
import NotifyCore

/// Limits and timings of the Plexer's sockets (`plexer.*`); each has a documented default.
public struct PlexerConfiguration: Sendable {
    /// Largest message a client may send, after reassembling fragments (also the largest frame).
    public var maxMessageBytes: Int
    /// How long a socket without a token on its handshake has to send its `auth` frame.
    public var authTimeoutMs: Int
    /// Interval of the Plexer's pings.
    public var pingIntervalMs: Int
    /// A socket that sent nothing (not even a pong) for this long is closed.
    public var idleTimeoutMs: Int
    /// Bytes waiting in a socket's outbound buffer beyond which its reader counts as too slow (4004).
    public var maxOutboundBytes: Int
    /// Requests per second a socket may send, sustained…
    public var requestsPerSecond: Int
    /// …and in a burst.
    public var requestBurst: Int
    /// Requests of one socket waiting for their reply at once (upstream calls, acks, inbox pages).
    public var maxInFlight: Int
    /// Largest inbox page of the `notify` channel.
    public var maxInboxPage: Int
    /// The `retry_ms` hint sent when draining is random in `[drainRetryMinMs, drainRetryMaxMs]`.
    public var drainRetryMinMs: Int
    public var drainRetryMaxMs: Int
    /// After a close frame, how long the Plexer waits for the client's before it closes the connection.
    public var closeGraceMs: Int
    /// A socket that takes none of its notify messages for this long is too slow (4004).
    public var stallTimeoutMs: Int
    /// Sockets one process holds at most; more are closed at once with 1013 (try again later).
    public var maxSockets: Int
    /// Authenticated sockets one user holds at most on one process; more are closed with 4007.
    public var maxSocketsPerUser: Int

    public init(
        maxMessageBytes: Int = 65_536, authTimeoutMs: Int = 10_000, pingIntervalMs: Int = 30_000,
        idleTimeoutMs: Int = 75_000, maxOutboundBytes: Int = 1 << 20, requestsPerSecond: Int = 50,
        requestBurst: Int = 100, maxInFlight: Int = 16, maxInboxPage: Int = 200, drainRetryMinMs: Int = 500,
        drainRetryMaxMs: Int = 5_000, closeGraceMs: Int = 2_000, stallTimeoutMs: Int = 10_000,
        maxSockets: Int = 100_000, maxSocketsPerUser: Int = 32
    ) {
        self.maxMessageBytes = maxMessageBytes
        self.authTimeoutMs = authTimeoutMs
        self.pingIntervalMs = pingIntervalMs
        self.idleTimeoutMs = idleTimeoutMs
        self.maxOutboundBytes = maxOutboundBytes
        self.requestsPerSecond = requestsPerSecond
        self.requestBurst = requestBurst
        self.maxInFlight = maxInFlight
        self.maxInboxPage = maxInboxPage
        self.drainRetryMinMs = drainRetryMinMs
        self.drainRetryMaxMs = drainRetryMaxMs
        self.closeGraceMs = closeGraceMs
        self.stallTimeoutMs = stallTimeoutMs
        self.maxSockets = maxSockets
        self.maxSocketsPerUser = maxSocketsPerUser
    }

    /// Reads the settings from `config` (scoped to `plexer`).
    public init(config: ConfigReader) throws(NotifyConfigError) {
        let d = PlexerConfiguration()
        self.init(
            maxMessageBytes: config.int(forKey: "maxMessageBytes", default: d.maxMessageBytes),
            authTimeoutMs: config.int(forKey: "authTimeoutMs", default: d.authTimeoutMs),
            pingIntervalMs: config.int(forKey: "pingIntervalMs", default: d.pingIntervalMs),
            idleTimeoutMs: config.int(forKey: "idleTimeoutMs", default: d.idleTimeoutMs),
            maxOutboundBytes: config.int(forKey: "maxOutboundBytes", default: d.maxOutboundBytes),
            requestsPerSecond: config.int(forKey: "requestsPerSecond", default: d.requestsPerSecond),
            requestBurst: config.int(forKey: "requestBurst", default: d.requestBurst),
            maxInFlight: config.int(forKey: "maxInFlight", default: d.maxInFlight),
            maxInboxPage: config.int(forKey: "maxInboxPage", default: d.maxInboxPage),
            drainRetryMinMs: config.int(forKey: "drainRetryMinMs", default: d.drainRetryMinMs),
            drainRetryMaxMs: config.int(forKey: "drainRetryMaxMs", default: d.drainRetryMaxMs),
            closeGraceMs: config.int(forKey: "closeGraceMs", default: d.closeGraceMs),
            stallTimeoutMs: config.int(forKey: "stallTimeoutMs", default: d.stallTimeoutMs),
            maxSockets: config.int(forKey: "maxSockets", default: d.maxSockets),
            maxSocketsPerUser: config.int(forKey: "maxSocketsPerUser", default: d.maxSocketsPerUser))
        try self.validate()
    }

    func validate() throws(NotifyConfigError) {
        for (name, value) in [
            ("maxMessageBytes", self.maxMessageBytes), ("authTimeoutMs", self.authTimeoutMs),
            ("pingIntervalMs", self.pingIntervalMs), ("idleTimeoutMs", self.idleTimeoutMs),
            ("maxOutboundBytes", self.maxOutboundBytes), ("requestsPerSecond", self.requestsPerSecond),
            ("requestBurst", self.requestBurst), ("maxInFlight", self.maxInFlight), ("maxInboxPage", self.maxInboxPage),
            ("drainRetryMinMs", self.drainRetryMinMs), ("closeGraceMs", self.closeGraceMs),
            ("stallTimeoutMs", self.stallTimeoutMs), ("maxSockets", self.maxSockets),
            ("maxSocketsPerUser", self.maxSocketsPerUser),
        ] where value <= 0 {
            throw NotifyConfigError("plexer.\(name) must be positive, got \(value)")
        }
        guard self.drainRetryMaxMs >= self.drainRetryMinMs else {
            throw NotifyConfigError("plexer.drainRetryMaxMs must not be below plexer.drainRetryMinMs")
        }
        guard self.idleTimeoutMs > self.pingIntervalMs else {
            throw NotifyConfigError("plexer.idleTimeoutMs must be longer than plexer.pingIntervalMs")
        }
        guard self.maxMessageBytes <= 16 << 20 else {
            throw NotifyConfigError("plexer.maxMessageBytes must be at most 16 MiB")
        }
    }
}
