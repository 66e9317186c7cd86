import NIOCore
import RedisClient

/// The Redis keys of the delay queue. Every key of shard `s` carries the hash tag `{s}`, the same tag as the
/// user data of that shard, so each script touches one cluster slot.
public struct QueueKeys: Sendable {
    /// Prefix of every key (`dq` by default); lets several deployments share one Redis.
    public let prefix: String
    /// The keys of every shard, built once: they go with every script call.
    private let cached: [[RedisArgument]]

    public init(prefix: String = "dq", shardCount: Int = 64) {
        self.prefix = prefix
        self.cached = (0..<shardCount).map { Self.makeShardKeys(prefix: prefix, shard: $0) }
    }

    /// The seven keys of a shard, in the order the scripts expect them (see `Scripts/common.lua`).
    func shardKeys(_ shard: Int) -> [RedisArgument] {
        shard < self.cached.count ? self.cached[shard] : Self.makeShardKeys(prefix: self.prefix, shard: shard)
    }

    private static func makeShardKeys(prefix: String, shard: Int) -> [RedisArgument] {
        let tag = "\(prefix):{\(shard)}"
        return ["due", "job", "lease", "cancelled", "dead", "stats", "done"].map {
            .bytes(ByteBuffer(string: "\(tag):\($0)"))
        }
    }

    /// The user's set of jobs not yet acknowledged, scored by inbox position.
    /// Index of the cancelled-after-claim set among ``shardKeys(_:)``.
    static let cancelledIndex = 3
    /// Index of the dead-letter set among ``shardKeys(_:)``.
    static let deadIndex = 4

    func pending(shard: Int, userID: String) -> RedisArgument {
        .string("\(self.prefix):{\(shard)}:pending:\(userID)")
    }

    /// Channel on which schedules announce a new earliest job of a shard (payload: `<shard> <due ms>`).
    public var wakeChannel: String { "\(self.prefix):wake" }

    /// Sorted set of live consumers, scored by heartbeat expiry.
    var consumers: RedisArgument { .string("\(self.prefix):consumers") }
}
