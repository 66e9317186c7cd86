/// Messages of one subscription, as an `AsyncSequence`.
///
/// The subscription ends (and its channels are unsubscribed when no other subscription needs them) when
/// ``unsubscribe()`` is called, when the sequence is dropped, or when the subscriber shuts down.
public struct RedisSubscription: AsyncSequence, Sendable {
    public typealias Element = RedisPubSubMessage

    let stream: AsyncStream<RedisPubSubMessage>
    let continuation: AsyncStream<RedisPubSubMessage>.Continuation

    public func makeAsyncIterator() -> AsyncStream<RedisPubSubMessage>.Iterator {
        self.stream.makeAsyncIterator()
    }

    /// Ends the subscription; iteration finishes after the messages already buffered.
    public func unsubscribe() {
        self.continuation.finish()
    }
}
