import NIOCore
import RedisClient
import Synchronization

/// One reader's live messages for one user, and the ticks its heartbeat and deadline need, behind one `next()`.
///
/// Messages come from the process's pub/sub connection (the listener is its ``RedisMessageSink``), ticks from
/// the hub's one ``LiveTicker``: an open stream costs one waiting task, a small buffer and no timer of its own,
/// and an event reaches the reader with a single hand-off. The buffer is bounded: a reader that falls that far
/// behind ends with ``RedisSubscription/EndReason/overflow`` (after what was buffered) and resumes from its last id.
public final class LiveListener: RedisMessageSink {
    /// What ``next()`` returns.
    public enum Item: Sendable, Equatable {
        /// A message published to the user's channel.
        case message(ByteBuffer)
        /// The reader's schedule is due (heartbeat or deadline); see ``LiveTicker/Schedule``.
        case tick
    }

    private struct State {
        var buffer = CircularBuffer<ByteBuffer>(initialCapacity: 2)
        var waiter: CheckedContinuation<Item?, Never>?
        var tickPending = false
        var endReason: RedisSubscription.EndReason?
        var isClosed = false
        var onClose: (@Sendable () -> Void)?
        /// Set in push mode (``LiveListener/deliver(to:)``).
        var sink: (@Sendable (Item?) -> Void)?

        /// The next item, `.some(nil)` when ended (after the buffer), `nil` when the reader must wait.
        mutating func take() -> Item?? {
            if let payload = self.buffer.popFirst() { return .some(.message(payload)) }
            if self.tickPending {
                self.tickPending = false
                return .some(.tick)
            }
            if self.endReason != nil || self.isClosed { return .some(nil) }
            return nil
        }

        mutating func takeWaiter() -> CheckedContinuation<Item?, Never>? {
            defer { self.waiter = nil }
            return self.waiter
        }
    }

    private let bufferLimit: Int
    private let state = Mutex(State())

    init(bufferLimit: Int) {
        self.bufferLimit = max(1, bufferLimit)
    }

    /// The next message or tick, in arrival order (a tick waits behind buffered messages); `nil` once the
    /// listener ended (see ``endReason``), was closed, or the calling task is cancelled. One reader at a time.
    public func next() async -> Item? {
        if let ready = self.state.withLock({ $0.take() }) { return ready }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let ready = self.state.withLock { state -> Item?? in
                    if let ready = state.take() { return ready }
                    if Task.isCancelled { return .some(nil) }
                    state.waiter = continuation
                    return nil
                }
                if let ready { continuation.resume(returning: ready) }
            }
        } onCancel: {
            self.state.withLock { $0.takeWaiter() }?.resume(returning: nil)
        }
    }

    /// Whether a tick waits to be read (for tests).
    var hasPendingTick: Bool { self.state.withLock { $0.tickPending } }

    /// Hands every item to `sink` from now on instead of ``next()``: first what is buffered, then each item as it
    /// comes, in order, and `nil` once when the listener ends by itself (``endReason`` says why); nothing after
    /// ``close()``. For readers that are not tasks (a NIO handler): no task waits per listener, and an event
    /// costs one hop to the reader's event loop.
    ///
    /// `sink` runs under the listener's lock, on the thread that produced the item (the pub/sub connection's loop,
    /// the ticker), which keeps the order: it must only hand the item on (an event loop's `execute`). In this mode
    /// the listener buffers nothing, so the reader bounds what it queues itself.
    public func deliver(to sink: @escaping @Sendable (Item?) -> Void) {
        self.state.withLock { state in
            guard !state.isClosed else { return }
            while let item = state.take() {
                sink(item)
                if item == nil { return }
            }
            state.sink = sink
        }
    }

    /// Why the listener ended by itself; `nil` while it runs, or after ``close()``.
    public var endReason: RedisSubscription.EndReason? {
        self.state.withLock { $0.endReason }
    }

    /// Stops listening: unsubscribes (when no other listener needs the channel) and leaves the ticker. Idempotent.
    public func close() {
        let (waiter, onClose) = self.state.withLock { state in
            state.isClosed = true
            state.sink = nil
            state.buffer.removeAll()
            defer { state.onClose = nil }
            return (state.takeWaiter(), state.onClose)
        }
        waiter?.resume(returning: nil)
        onClose?()
    }

    /// What ``close()`` undoes, set once the listener is subscribed; runs at once when already closed.
    func onClose(_ action: @escaping @Sendable () -> Void) {
        let closed = self.state.withLock { state -> Bool in
            if !state.isClosed { state.onClose = action }
            return state.isClosed
        }
        if closed { action() }
    }

    /// Wakes the reader with ``Item/tick`` (a tick already pending is not doubled).
    func tick() {
        let waiter = self.state.withLock { state -> CheckedContinuation<Item?, Never>? in
            guard state.endReason == nil, !state.isClosed else { return nil }
            if let sink = state.sink {
                sink(.tick)
                return nil
            }
            // A waiting reader has nothing buffered (it would have taken it): the tick goes straight to it.
            if let waiter = state.takeWaiter() { return waiter }
            state.tickPending = true
            return nil
        }
        waiter?.resume(returning: .tick)
    }

    // MARK: RedisMessageSink

    public func receive(_ message: RedisPubSubMessage) -> Bool {
        let (accepted, waiter) = self.state.withLock { state -> (Bool, CheckedContinuation<Item?, Never>?) in
            guard state.endReason == nil, !state.isClosed else { return (true, nil) }
            if let sink = state.sink {
                sink(.message(message.payload))
                return (true, nil)
            }
            if let waiter = state.takeWaiter() { return (true, waiter) }
            guard state.buffer.count < self.bufferLimit else { return (false, nil) }
            state.buffer.append(message.payload)
            return (true, nil)
        }
        waiter?.resume(returning: .message(message.payload))
        return accepted
    }

    public func end(_ reason: RedisSubscription.EndReason) {
        let waiter = self.state.withLock { state -> CheckedContinuation<Item?, Never>? in
            guard state.endReason == nil, !state.isClosed else { return nil }
            state.endReason = reason
            if let sink = state.sink {
                state.sink = nil
                sink(nil)
            }
            return state.takeWaiter()
        }
        waiter?.resume(returning: nil)
    }
}
