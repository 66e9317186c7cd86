import NotifyCore
import RedisClient

/// What the scripts of other parts need to schedule or cancel push jobs inside their own atomic step (the API's
/// ingest and retract), so that an inbox entry and its push job are written together or not at all.
extension DelayQueue {
    /// A script made of the queue's Lua prelude and helpers (see `QueueScripts.embeddablePrelude`) followed by
    /// `body`. The script's KEYS must start with ``shardKeys(_:)`` of the one shard it touches.
    public static func embeddingScript(_ body: String) -> RedisScript {
        RedisScript(QueueScripts.embeddablePrelude + body)
    }

    /// The queue keys of `shard`, in the order the prelude expects them as KEYS[1...7].
    public func shardKeys(_ shard: Int) -> [RedisArgument] {
        self.keys.shardKeys(shard)
    }

    /// The set of `userID`'s jobs not yet acknowledged, scored by inbox position.
    public func pendingKey(shard: Int, userID: String) -> RedisArgument {
        self.keys.pending(shard: shard, userID: userID)
    }

    /// The `now` argument of scripts: empty (Redis' `TIME`) unless a test pinned the clock.
    public var clockArgument: String { self.clock.argument }

    /// A stream id as the pending set's score, exactly as the queue writes it.
    public static func pendingScore(_ id: StreamID) -> String {
        self.scoreText(id)
    }
}
