import Configuration
import NotifyCore

/// Limits and timings of the HTTP API itself (ingest limits are in ``IngestConfiguration``).
public struct APIConfiguration: Sendable {
    /// Largest request body; 10,000 recipients of up to 128 bytes fit in the default.
    public var maxBodyBytes: Int
    /// Interval of SSE heartbeat comments, so proxies keep idle streams open and dead clients are noticed.
    public var heartbeatMs: Int
    /// Live events buffered per SSE client before it counts as too slow and is disconnected (it resumes).
    public var streamBufferEvents: Int
    /// How long an SSE socket may take nothing (while events wait, or after the stream's end) before the reader
    /// counts as too slow and the connection is closed; it resumes from its last id.
    public var streamStallMs: Int
    /// Largest inbox page.
    public var maxPageSize: Int
    /// Most ids in one `POST /v1/ack`.
    public var maxAckIDs: Int
    /// Where devices may point (Web Push endpoints, webhooks): registration refuses what the push workers would
    /// refuse to send to. The assembly sets it from `push.allowLoopback`, the workers' own setting.
    public var egress: EgressPolicy

    public init(
        maxBodyBytes: Int = 2 << 20, heartbeatMs: Int = 15_000, streamBufferEvents: Int = 512,
        streamStallMs: Int = 10_000, maxPageSize: Int = 200, maxAckIDs: Int = 1_000,
        egress: EgressPolicy = EgressPolicy()
    ) {
        self.egress = egress
        self.maxBodyBytes = maxBodyBytes
        self.heartbeatMs = heartbeatMs
        self.streamBufferEvents = streamBufferEvents
        self.streamStallMs = streamStallMs
        self.maxPageSize = maxPageSize
        self.maxAckIDs = maxAckIDs
    }

    /// Reads the settings from `config` (scoped to `api`).
    public init(config: ConfigReader) throws(NotifyConfigError) {
        let d = APIConfiguration()
        self.init(
            maxBodyBytes: config.int(forKey: "maxBodyBytes", default: d.maxBodyBytes),
            heartbeatMs: config.int(forKey: "heartbeatMs", default: d.heartbeatMs),
            streamBufferEvents: config.int(forKey: "streamBufferEvents", default: d.streamBufferEvents),
            streamStallMs: config.int(forKey: "streamStallMs", default: d.streamStallMs),
            maxPageSize: config.int(forKey: "maxPageSize", default: d.maxPageSize),
            maxAckIDs: config.int(forKey: "maxAckIDs", default: d.maxAckIDs))
        for (name, value) in [
            ("maxBodyBytes", self.maxBodyBytes), ("heartbeatMs", self.heartbeatMs),
            ("streamBufferEvents", self.streamBufferEvents), ("streamStallMs", self.streamStallMs),
            ("maxPageSize", self.maxPageSize),
            ("maxAckIDs", self.maxAckIDs),
        ] where value <= 0 {
            throw NotifyConfigError("api.\(name) must be positive, got \(value)")
        }
    }
}
