import Configuration

/// Which shard a user's data lives in: `fnv1a64(userID) mod count`.
///
/// The shard number is the Redis Cluster hash tag of every key of the user (inbox, devices, pending pushes) and of
/// the delay-queue keys holding their jobs, so one user's changes are one atomic script on one node. The count is
/// fixed per deployment: changing it moves users between shards.
public struct ShardMap: Sendable, Hashable {
    /// Number of shards (default 64).
    public let count: Int

    public init(count: Int = 64) {
        precondition(count > 0, "shard count must be positive")
        self.count = count
    }

    /// The shard of `userID`.
    public func shard(of userID: String) -> Int {
        Int(Self.fnv1a64(userID.utf8) % UInt64(self.count))
    }

    /// Every shard number.
    public var all: Range<Int> { 0..<self.count }

    static func fnv1a64(_ bytes: some Sequence<UInt8>) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        return hash
    }
}

extension ShardMap {
    /// Reads `shardCount` (NOTIFY_SHARD_COUNT, default 64). Fixed per deployment: changing it moves users.
    public init(config: ConfigReader) throws(NotifyConfigError) {
        let count = config.int(forKey: "shardCount", default: 64)
        guard (1...16_384).contains(count) else {
            throw NotifyConfigError("shardCount \(count) must be between 1 and 16384")
        }
        self.init(count: count)
    }
}
