import Configuration
import NotifyCore

/// Limits and defaults of ingest and of the inboxes it writes.
public struct IngestConfiguration: Sendable {
    /// Most recipients in one request.
    public var maxRecipients: Int
    /// Largest `payload`, in bytes of compact JSON.
    public var maxPayloadBytes: Int
    /// Push delay when neither the request nor the user's preferences set one.
    public var defaultDelayMs: Int
    /// Inbox entries kept per user (approximately: Redis trims whole nodes).
    public var inboxMaxLength: Int
    /// An inbox expires this long after its last new event.
    public var inboxTtlMs: Int
    /// How long a notification's recipients are remembered: the window for idempotent retries and retraction
    /// (extended to cover the push delay when that is longer).
    public var recordTtlMs: Int

    public init(
        maxRecipients: Int = 10_000, maxPayloadBytes: Int = 4_096, defaultDelayMs: Int = 10_000,
        inboxMaxLength: Int = 1_000, inboxTtlMs: Int = 7 * 24 * 3_600_000, recordTtlMs: Int = 3_600_000
    ) {
        self.maxRecipients = maxRecipients
        self.maxPayloadBytes = maxPayloadBytes
        self.defaultDelayMs = defaultDelayMs
        self.inboxMaxLength = inboxMaxLength
        self.inboxTtlMs = inboxTtlMs
        self.recordTtlMs = recordTtlMs
    }

    /// Reads the settings from `config` (scoped to `ingest`).
    public init(config: ConfigReader) throws(NotifyConfigError) {
        let d = IngestConfiguration()
        self.init(
            maxRecipients: config.int(forKey: "maxRecipients", default: d.maxRecipients),
            maxPayloadBytes: config.int(forKey: "maxPayloadBytes", default: d.maxPayloadBytes),
            defaultDelayMs: config.int(forKey: "defaultDelayMs", default: d.defaultDelayMs),
            inboxMaxLength: config.int(forKey: "inboxMaxLength", default: d.inboxMaxLength),
            inboxTtlMs: config.int(forKey: "inboxTtlMs", default: d.inboxTtlMs),
            recordTtlMs: config.int(forKey: "recordTtlMs", default: d.recordTtlMs))
        for (name, value) in [
            ("maxRecipients", self.maxRecipients), ("maxPayloadBytes", self.maxPayloadBytes),
            ("inboxMaxLength", self.inboxMaxLength), ("inboxTtlMs", self.inboxTtlMs),
            ("recordTtlMs", self.recordTtlMs),
        ] where value <= 0 {
            throw NotifyConfigError("ingest.\(name) must be positive, got \(value)")
        }
        guard self.defaultDelayMs >= 0 else { throw NotifyConfigError("ingest.defaultDelayMs must not be negative") }
    }
}
