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
    /// How long dead letters are kept for inspection and replay before they are removed, payload and all.
    public var deadRetentionMs: Int
    /// Most dead letters kept per shard; beyond it the oldest go first.
    public var maxDeadPerShard: Int
    /// Most unacknowledged pushes one user may have waiting; a push beyond it is not scheduled (ingest says
    /// `limited`), so one user cannot grow a set without bound.
    public var maxPendingPerUser: Int
    /// How often a process trims finished jobs' tombstones and old dead letters of every shard.
    public var trimIntervalMs: Int
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
        deadRetentionMs: Int = 7 * 24 * 3_600_000,
        maxDeadPerShard: Int = 100_000,
        maxPendingPerUser: Int = 10_000,
        trimIntervalMs: Int = 30_000,
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
        self.deadRetentionMs = deadRetentionMs
        self.maxDeadPerShard = maxDeadPerShard
        self.maxPendingPerUser = max(1, maxPendingPerUser)
        self.trimIntervalMs = trimIntervalMs
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
            deadRetentionMs: config.int(forKey: "deadRetentionMs", default: d.deadRetentionMs),
            maxDeadPerShard: config.int(forKey: "maxDeadPerShard", default: d.maxDeadPerShard),
            maxPendingPerUser: config.int(forKey: "maxPendingPerUser", default: d.maxPendingPerUser),
            trimIntervalMs: config.int(forKey: "trimIntervalMs", default: d.trimIntervalMs),
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

    /// The longest a job may still be sent after its due time: every attempt's lease and the longest backoff
    /// before the next one (the jitter only shortens them).
    public var retryWindowMs: Int {
        (1...max(1, self.maxAttempts)).reduce(0) { total, attempt in
            total + self.leaseMs + min(self.retryMaxMs, self.retryBaseMs << min(attempt - 1, 30))
        }
    }

    /// How long past a job's due time the records that guard it (the user's pending set, the notification's
    /// record) must live, so an ack or a retract still finds it: its retry window, a dead letter's retention, and
    /// one more retry window for a replay.
    public var jobGuardMs: Int {
        2 * self.retryWindowMs + self.deadRetentionMs
    }
}
