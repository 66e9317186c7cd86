import NIOCore

/// How a subscription matches channels.
public enum RedisSubscriptionKind: String, Sendable, Hashable {
    /// SUBSCRIBE: exact channel names.
    case channel
    /// PSUBSCRIBE: glob patterns.
    case pattern
    /// SSUBSCRIBE (Redis 7 sharded pub/sub): exact channel names, routed by slot in a cluster.
    case shard

    var subscribeCommand: String {
        switch self {
        case .channel: "SUBSCRIBE"
        case .pattern: "PSUBSCRIBE"
        case .shard: "SSUBSCRIBE"
        }
    }

    var unsubscribeCommand: String {
        switch self {
        case .channel: "UNSUBSCRIBE"
        case .pattern: "PUNSUBSCRIBE"
        case .shard: "SUNSUBSCRIBE"
        }
    }
}

/// A message received on a subscription.
public struct RedisPubSubMessage: Sendable, Hashable {
    /// The kind of subscription that matched.
    public var kind: RedisSubscriptionKind
    /// The channel the message was published to.
    public var channel: String
    /// The pattern that matched, for ``RedisSubscriptionKind/pattern``.
    public var pattern: String?
    /// The published bytes.
    public var payload: ByteBuffer

    public init(kind: RedisSubscriptionKind, channel: String, pattern: String? = nil, payload: ByteBuffer) {
        self.kind = kind
        self.channel = channel
        self.pattern = pattern
        self.payload = payload
    }
}
