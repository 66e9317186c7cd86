/// Divides shards among live consumers by rendezvous (highest random weight) hashing.
///
/// Every consumer computes the same answer from the same member list, without coordination; when a consumer
/// joins or leaves, only the shards it wins or loses move. During a membership change two consumers may briefly
/// both claim a shard, which is safe: claims are atomic, and leases keep a job with one worker.
public enum ShardAssignment {
    /// The shards `consumer` owns among `consumers` (which should include it).
    public static func shards(of consumer: String, among consumers: [String], shardCount: Int) -> [Int] {
        guard !consumers.isEmpty else { return Array(0..<shardCount) }
        return (0..<shardCount).filter { shard in
            Self.owner(of: shard, among: consumers) == consumer
        }
    }

    /// The consumer that owns `shard`.
    public static func owner(of shard: Int, among consumers: [String]) -> String? {
        consumers.max {
            Self.weight($0, shard) < Self.weight($1, shard)
                || (Self.weight($0, shard) == Self.weight($1, shard) && $0 < $1)
        }
    }

    static func weight(_ consumer: String, _ shard: Int) -> UInt64 {
        // FNV-1a over "consumer#shard", then a SplitMix64 finaliser so close inputs spread evenly.
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in consumer.utf8 + Array("#\(shard)".utf8) {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        hash = (hash ^ (hash >> 30)) &* 0xBF58_476D_1CE4_E5B9
        hash = (hash ^ (hash >> 27)) &* 0x94D0_49BB_1331_11EB
        return hash ^ (hash >> 31)
    }
}
