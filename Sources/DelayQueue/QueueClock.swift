import Synchronization

/// Where the queue's "now" comes from.
public enum QueueClock: Sendable {
    /// Redis' TIME, read inside each script: producers' and workers' clocks never matter.
    case redis
    /// A clock the caller moves, for tests of time-dependent behaviour without sleeping.
    case manual(ManualQueueClock)

    /// The `now` argument for a script: empty means "use TIME".
    var argument: String {
        switch self {
        case .redis: ""
        case .manual(let clock): String(clock.nowMs)
        }
    }
}

/// A settable clock in milliseconds.
public final class ManualQueueClock: Sendable {
    private let value: Mutex<Int64>

    public init(nowMs: Int64 = 1_700_000_000_000) {
        self.value = Mutex(nowMs)
    }

    public var nowMs: Int64 { self.value.withLock { $0 } }

    public func advance(byMs milliseconds: Int64) {
        self.value.withLock { $0 += milliseconds }
    }

    public func set(_ nowMs: Int64) {
        self.value.withLock { $0 = nowMs }
    }
}
