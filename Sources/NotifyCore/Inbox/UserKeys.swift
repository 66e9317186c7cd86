import RedisClient

/// The Redis keys of users' notification data. Every key of a user carries the hash tag of the user's shard,
/// the same tag as the delay-queue keys of that shard, so one user's ingest or ack is one script on one slot.
public struct UserKeys: Sendable {
    /// Prefix of every key (`n` by default).
    public let prefix: String
    public let shards: ShardMap

    public init(prefix: String = "n", shards: ShardMap = ShardMap()) {
        self.prefix = prefix
        self.shards = shards
    }

    /// The user's inbox stream (capped, expiring); entry ids are event ids.
    public func inbox(_ userID: String) -> String { self.key("inbox", userID) }

    /// The user's preferences hash (mutes, quiet hours, push delay).
    public func preferences(_ userID: String) -> String { self.key("prefs", userID) }

    /// The user's devices hash (device id -> JSON).
    public func devices(_ userID: String) -> String { self.key("dev", userID) }

    /// The devices a push job was already delivered to (a set of device ids), so a retry or a replay sends only
    /// to the devices that did not get it yet.
    public func sentDevices(notificationID: String, userID: String) -> String {
        "\(self.prefix):{\(self.shards.shard(of: userID))}:sent:\(notificationID)/\(userID)"
    }

    /// The pub/sub channel on which the user's new events are published.
    public func liveChannel(_ userID: String) -> String { self.key("live", userID) }

    /// Prefix of the live channels of `shard`'s users (the ingest script appends the user id).
    public func liveChannelPrefix(shard: Int) -> String { "\(self.prefix):{\(shard)}:live:" }

    /// The record of a notification's recipients in `shard` (user -> event id), for idempotency and retraction.
    public func notificationRecord(_ notificationID: String, shard: Int) -> String {
        "\(self.prefix):{\(shard)}:notif:\(notificationID)"
    }

    /// The fingerprint of the request that first used a notification id (from an idempotency key).
    public func idempotencyRecord(_ notificationID: String) -> String {
        "\(self.prefix):idem:\(notificationID)"
    }

    private func key(_ kind: String, _ userID: String) -> String {
        "\(self.prefix):{\(self.shards.shard(of: userID))}:\(kind):\(userID)"
    }
}
