import Configuration

/// Settings of the delay queue and its consumers.
public struct DelayQueueConfiguration: Sendable {
    /// Prefix of every queue key.
    public var keyPrefix: String
    /// How long a claim holds a job before another worker may take it back.
    public var leaseMs: Int
    /// Tries before a job becomes a dead letter.
    public var maxAttempts: Int
    /// First retry delay; doubles per attempt (with jitter) up to ``retryMaxMs``.
    public var retryBaseMs: Int
    public var retryMaxMs: Int
    /// Largest payload accepted.
    public var maxPayloadBytes: Int
    /// Latest due time accepted, relative to now.
    public var maxDelayMs: Int
    /// How long finished jobs are remembered, so a late cancel says "already done" and a repeated schedule is a
    /// no-op; 0 turns tombstones off.
    public var doneRetentionMs: Int
    /// Expiry of a user's pending set, renewed by every schedule.
    public var pendingTtlMs: Int
    /// Jobs claimed per shard and call.
    public var claimBatch: Int
    /// Jobs a consumer runs at once.
    public var maxConcurrentJobs: Int
    /// Longest a consumer sleeps without claiming (wake-ups from new earlier jobs cut it short).
    public var maxSleepMs: Int
    /// How often a consumer renews its heartbeat (and re-reads who else is alive).
    public var heartbeatIntervalMs: Int
    /// After this long without a heartbeat, a consumer's shards go to the others.
    public var consumerTtlMs: Int

    public init(
        keyPrefix: String = "dq",
        leaseMs: Int = 30_000,
        maxAttempts: Int = 8,
        retryBaseMs: Int = 1_000,
        retryMaxMs: Int = 300_000,
        maxPayloadBytes: Int = 64 * 1024,
        maxDelayMs: Int = 30 * 24 * 3_600_000,
        doneRetentionMs: Int = 600_000,
        pendingTtlMs: Int = 7 * 24 * 3_600_000,
        claimBatch: Int = 64,
        maxConcurrentJobs: Int = 256,
        maxSleepMs: Int = 1_000,
        heartbeatIntervalMs: Int = 1_000,
        consumerTtlMs: Int = 5_000
    ) {
        self.keyPrefix = keyPrefix
        self.leaseMs = leaseMs
        self.maxAttempts = maxAttempts
        self.retryBaseMs = retryBaseMs
        self.retryMaxMs = retryMaxMs
        self.maxPayloadBytes = maxPayloadBytes
        self.maxDelayMs = maxDelayMs
        self.doneRetentionMs = doneRetentionMs
        self.pendingTtlMs = pendingTtlMs
        self.claimBatch = claimBatch
        self.maxConcurrentJobs = maxConcurrentJobs
        self.maxSleepMs = maxSleepMs
        self.heartbeatIntervalMs = heartbeatIntervalMs
        self.consumerTtlMs = consumerTtlMs
    }

    /// Reads the settings from `config` (scoped to `delayQueue`), with the defaults above.
    public init(config: ConfigReader) {
        let d = DelayQueueConfiguration()
        self.init(
            keyPrefix: config.string(forKey: "keyPrefix", default: d.keyPrefix),
            leaseMs: config.int(forKey: "leaseMs", default: d.leaseMs),
            maxAttempts: config.int(forKey: "maxAttempts", default: d.maxAttempts),
            retryBaseMs: config.int(forKey: "retryBaseMs", default: d.retryBaseMs),
            retryMaxMs: config.int(forKey: "retryMaxMs", default: d.retryMaxMs),
            maxPayloadBytes: config.int(forKey: "maxPayloadBytes", default: d.maxPayloadBytes),
            maxDelayMs: config.int(forKey: "maxDelayMs", default: d.maxDelayMs),
            doneRetentionMs: config.int(forKey: "doneRetentionMs", default: d.doneRetentionMs),
            pendingTtlMs: config.int(forKey: "pendingTtlMs", default: d.pendingTtlMs),
            claimBatch: config.int(forKey: "claimBatch", default: d.claimBatch),
            maxConcurrentJobs: config.int(forKey: "maxConcurrentJobs", default: d.maxConcurrentJobs),
            maxSleepMs: config.int(forKey: "maxSleepMs", default: d.maxSleepMs),
            heartbeatIntervalMs: config.int(forKey: "heartbeatIntervalMs", default: d.heartbeatIntervalMs),
            consumerTtlMs: config.int(forKey: "consumerTtlMs", default: d.consumerTtlMs)
        )
    }

    /// The delay before retry number `attempt` (1-based): exponential from ``retryBaseMs``, capped at
    /// ``retryMaxMs``, with "equal jitter" (half fixed, half random) so retries of a failed batch spread out.
    public func retryDelayMs(attempt: Int) -> Int {
        let exponent = min(max(attempt - 1, 0), 30)
        let ceiling = min(self.retryMaxMs, self.retryBaseMs << exponent)
        return ceiling / 2 + Int.random(in: 0...max(0, ceiling - ceiling / 2))
    }
}
