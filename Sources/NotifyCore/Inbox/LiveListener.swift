import NIOCore
import RedisClient
import Synchronization

/// One reader's live messages for one user, and the ticks its heartbeat and deadline need, in one bounded buffer.
///
/// Messages come from the process's pub/sub connection (the listener is its ``RedisMessageSink``), ticks from
/// the hub's one ``LiveTicker``: an open stream costs a small buffer and no timer of its own. A task reads with
/// ``next()``; a reader that is not a task (a NIO handler) is woken with ``wake(with:)`` and takes what is there
/// with ``drain(max:)``. Either way the buffer is bounded: a reader that falls that far behind ends with
/// ``RedisSubscription/EndReason/overflow`` (after what was buffered) and resumes from its last id.
public final class LiveListener: RedisMessageSink {
    /// What ``next()`` and ``drain(max:)`` return.
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
        /// Push mode: called when something arrives while ``isWakeArmed``.
        var wake: (@Sendable () -> Void)?
        /// The reader took everything at its last drain: the next arrival wakes it.
        var isWakeArmed = false

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

        /// Push mode: the wake to call after an arrival (once per drain).
        mutating func takeWake() -> (@Sendable () -> Void)? {
            guard self.isWakeArmed, let wake = self.wake else { return nil }
            self.isWakeArmed = false
            return wake
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

    /// Push mode, for a reader that is not a task: `wake` is called (outside the listener's lock, on the thread
    /// of the arrival: the pub/sub connection's loop, the ticker) when a message, a tick or the end arrives after
    /// the reader drained everything, so one wake-up serves a whole batch. Called at once when something is
    /// buffered already. The reader then calls ``drain(max:)`` on its own thread.
    public func wake(with wake: @escaping @Sendable () -> Void) {
        let now = self.state.withLock { state -> Bool in
            guard !state.isClosed else { return false }
            state.wake = wake
            state.isWakeArmed = false
            return true
        }
        if now { wake() }
    }

    /// Takes up to `max` items in order (messages, then a pending tick); `end` is set once everything buffered was
    /// taken and the listener ended by itself. Taking everything re-arms the wake-up; a reader that stops early
    /// (its socket is full) drains again later, and meanwhile the buffer bounds what waits.
    public func drain(max: Int) -> (items: [Item], end: RedisSubscription.EndReason?) {
        self.state.withLock { state in
            var items: [Item] = []
            while items.count < max, let item = state.take() {
                guard let item else { break }
                items.append(item)
            }
            let empty = state.buffer.isEmpty && !state.tickPending
            if empty { state.isWakeArmed = true }
            return (items, empty ? state.endReason : nil)
        }
    }

    /// Whether a tick waits to be read (for tests).
    var hasPendingTick: Bool { self.state.withLock { $0.tickPending } }

    /// Why the listener ended by itself; `nil` while it runs, or after ``close()``.
    public var endReason: RedisSubscription.EndReason? {
        self.state.withLock { $0.endReason }
    }

    /// Stops listening: unsubscribes (when no other listener needs the channel) and leaves the ticker. Idempotent.
    public func close() {
        let (waiter, onClose) = self.state.withLock { state in
            state.isClosed = true
            state.buffer.removeAll()
            state.wake = nil
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
        let (waiter, wake) = self.state.withLock {
            state -> (CheckedContinuation<Item?, Never>?, (@Sendable () -> Void)?) in
            guard state.endReason == nil, !state.isClosed else { return (nil, nil) }
            // A waiting reader has nothing buffered (it would have taken it): the tick goes straight to it.
            if let waiter = state.takeWaiter() { return (waiter, nil) }
            state.tickPending = true
            return (nil, state.takeWake())
        }
        waiter?.resume(returning: .tick)
        wake?()
    }

    // MARK: RedisMessageSink

    public func receive(_ message: RedisPubSubMessage) -> Bool {
        let (accepted, waiter, wake) = self.state.withLock {
            state -> (Bool, CheckedContinuation<Item?, Never>?, (@Sendable () -> Void)?) in
            guard state.endReason == nil, !state.isClosed else { return (true, nil, nil) }
            if let waiter = state.takeWaiter() { return (true, waiter, nil) }
            guard state.buffer.count < self.bufferLimit else { return (false, nil, nil) }
            state.buffer.append(message.payload)
            return (true, nil, state.takeWake())
        }
        waiter?.resume(returning: .message(message.payload))
        wake?()
        return accepted
    }

    public func end(_ reason: RedisSubscription.EndReason) {
        let (waiter, wake) = self.state.withLock {
            state -> (CheckedContinuation<Item?, Never>?, (@Sendable () -> Void)?) in
            guard state.endReason == nil, !state.isClosed else { return (nil, nil) }
            state.endReason = reason
            return (state.takeWaiter(), state.takeWake())
        }
        waiter?.resume(returning: nil)
        wake?()
    }
}
