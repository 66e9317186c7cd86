import Synchronization

/// Messages of one subscription, as an `AsyncSequence`.
///
/// The subscription ends (and its channels are unsubscribed when no other subscription needs them) when
/// ``unsubscribe()`` is called, when the sequence is dropped, or when the subscriber shuts down.
public struct RedisSubscription: AsyncSequence, Sendable {
    public typealias Element = RedisPubSubMessage

    /// Why a subscription made with `endOnGap` ended.
    public enum EndReason: Sendable, Hashable {
        /// Its buffer was full: the reader is slower than the messages.
        case overflow
        /// The connection dropped; messages published until the resubscription are lost.
        case disconnected
        /// The subscriber shut down.
        case shutdown
    }

    /// Written by the subscriber once, read by the reader after the sequence ended.
    final class EndSignal: Sendable {
        private let reason = Mutex<EndReason?>(nil)

        func set(_ reason: EndReason) {
            self.reason.withLock { $0 = $0 ?? reason }
        }

        var value: EndReason? { self.reason.withLock { $0 } }
    }

    let stream: AsyncStream<RedisPubSubMessage>
    let continuation: AsyncStream<RedisPubSubMessage>.Continuation
    let signal: EndSignal

    /// Why the subscription ended by itself (only for `endOnGap` subscriptions; `nil` while running or after
    /// ``unsubscribe()``).
    public var endReason: EndReason? { self.signal.value }

    public func makeAsyncIterator() -> AsyncStream<RedisPubSubMessage>.Iterator {
        self.stream.makeAsyncIterator()
    }

    /// Ends the subscription; iteration finishes after the messages already buffered.
    public func unsubscribe() {
        self.continuation.finish()
    }
}
