import RedisClient

/// Live fanout of new inbox events to the connections of this process.
///
/// One Redis pub/sub connection per process (the ``RedisSubscriber``) carries every user's channel: a channel is
/// subscribed while at least one local connection of that user listens, and unsubscribed after the last leaves.
/// Each listener has its own bounded buffer: one that falls behind ends with
/// ``RedisSubscription/EndReason/overflow`` and resumes from its last id later, never slowing the others.
public struct LiveHub: Sendable {
    public let subscriber: RedisSubscriber
    public let keys: UserKeys
    /// Events buffered per listener before it counts as too slow.
    public let bufferLimit: Int

    public init(subscriber: RedisSubscriber, keys: UserKeys, bufferLimit: Int = 512) {
        self.subscriber = subscriber
        self.keys = keys
        self.bufferLimit = bufferLimit
    }

    /// Starts listening to `userID`'s new events; returns once Redis confirmed the subscription, so every event
    /// ingested after the return is seen (or the subscription ends with a reason).
    public func listen(to userID: String) async throws -> RedisSubscription {
        try await self.subscriber.subscribe(
            to: [self.keys.liveChannel(userID)], endOnGap: true, bufferLimit: self.bufferLimit)
    }
}
