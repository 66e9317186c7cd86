import RedisClient

/// Live fanout of new inbox events to the connections of this process.
///
/// One Redis pub/sub connection per process (the ``RedisSubscriber``) carries every user's channel: a channel is
/// subscribed while at least one local connection of that user listens, and unsubscribed after the last leaves.
/// Each listener has its own bounded buffer: one that falls behind ends with
/// ``RedisSubscription/EndReason/overflow`` and resumes from its last id later, never slowing the others. The
/// ``ticker`` (run it as a service, after the HTTP servers) gives every listener its heartbeat ticks and ends them
/// all on shutdown.
public struct LiveHub: Sendable {
    public let subscriber: RedisSubscriber
    public let keys: UserKeys
    /// Events buffered per listener before it counts as too slow.
    public let bufferLimit: Int
    public let ticker: LiveTicker

    public init(subscriber: RedisSubscriber, keys: UserKeys, bufferLimit: Int = 512, ticker: LiveTicker = LiveTicker())
    {
        self.subscriber = subscriber
        self.keys = keys
        self.bufferLimit = bufferLimit
        self.ticker = ticker
    }

    /// Starts listening to `userID`'s new events; returns once Redis confirmed the subscription, so every event
    /// ingested after the return is seen (or the listener ends with a reason). Close the listener when done.
    public func listen(to userID: String, schedule: LiveTicker.Schedule? = nil) async throws -> LiveListener {
        let listener = LiveListener(bufferLimit: self.bufferLimit)
        let subscription = try await self.subscriber.subscribe(to: [self.keys.liveChannel(userID)], sink: listener)
        let ticker = self.ticker
        ticker.add(listener, schedule: schedule)
        listener.onClose {
            subscription.cancel()
            ticker.remove(listener)
        }
        return listener
    }
}
