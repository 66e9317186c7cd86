/// Receives the messages of a subscription made with ``RedisSubscriber/subscribe(to:kind:sink:)``.
///
/// The subscriber calls it on the pub/sub connection's event loop, so it must not block: a sink hands the message
/// to its reader and returns. Where an `AsyncStream` per subscription costs too much (one open stream per user of
/// a busy process), a sink lets the reader wait on its own lighter structure, and fold other wake-ups (timers)
/// into the same wait.
public protocol RedisMessageSink: AnyObject, Sendable {
    /// Takes one message; `false` when it cannot (its buffer is full). The subscription then ends with
    /// ``RedisSubscription/EndReason/overflow``: a sink never skips a message silently.
    func receive(_ message: RedisPubSubMessage) -> Bool

    /// The subscription ended by itself: the reader was too slow, the connection dropped (messages published
    /// until the resubscription are lost), or the subscriber shut down.
    ///
    /// After ``RedisSinkSubscription/cancel()`` a call already under way may still arrive (to either method): a
    /// sink ignores what comes after it was cancelled.
    func end(_ reason: RedisSubscription.EndReason)
}

/// A subscription that delivers to a ``RedisMessageSink``; ``cancel()`` ends it.
public struct RedisSinkSubscription: Sendable {
    let id: Int
    let subscriber: RedisSubscriber

    /// Ends the subscription: its channels are unsubscribed when no other subscription needs them, and the sink
    /// gets nothing more. Idempotent.
    public func cancel() {
        self.subscriber.remove(self.id)
    }
}
