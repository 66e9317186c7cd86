import NIOCore

/// What a subscriber connection receives besides command replies.
enum RedisPushMessage: Sendable {
    /// A published message (`message`, `pmessage` or `smessage`).
    case message(RedisPubSubMessage)
    /// A (un)subscribe confirmation: the reply to a pub/sub command.
    case confirmation

    /// Classifies a reply read on a subscriber connection; `nil` for ordinary replies (e.g. PONG).
    init?(_ value: RedisValue) {
        guard case .array(let elements) = value, let kind = elements.first?.string else { return nil }
        switch kind {
        case "message" where elements.count == 3, "smessage" where elements.count == 3:
            guard let channel = elements[1].string, let payload = elements[2].bytes else { return nil }
            self = .message(
                RedisPubSubMessage(
                    kind: kind == "message" ? .channel : .shard, channel: channel, pattern: nil, payload: payload))
        case "pmessage" where elements.count == 4:
            guard let pattern = elements[1].string, let channel = elements[2].string,
                let payload = elements[3].bytes
            else { return nil }
            self = .message(RedisPubSubMessage(kind: .pattern, channel: channel, pattern: pattern, payload: payload))
        case "subscribe", "unsubscribe", "psubscribe", "punsubscribe", "ssubscribe", "sunsubscribe":
            self = .confirmation
        default:
            return nil
        }
    }
}
