/// A per-provider circuit breaker: after `failureThreshold` consecutive failures (gateway errors, timeouts) or
/// one credential fault, sends are held back for `openFor`; then one probe may go, and its result closes the
/// breaker or opens it again. Held-back pushes are deferred, not failed, so a gateway outage loses nothing.
public struct CircuitBreaker: Sendable {
    public enum State: Sendable, Hashable {
        case closed
        case open(until: ContinuousClock.Instant)
        /// One probe is out.
        case halfOpen
    }

    public let failureThreshold: Int
    public let openFor: Duration
    public private(set) var state: State = .closed
    private var failures = 0

    public init(failureThreshold: Int, openFor: Duration) {
        self.failureThreshold = max(1, failureThreshold)
        self.openFor = openFor
    }

    /// Whether a send may go now; when `false`, `retryIn` says how long to hold it back.
    public mutating func allow(now: ContinuousClock.Instant) -> (allowed: Bool, retryIn: Duration) {
        switch self.state {
        case .closed:
            return (true, .zero)
        case .open(let until) where now < until:
            return (false, until - now)
        case .open:
            self.state = .halfOpen
            return (true, .zero)
        case .halfOpen:
            return (false, self.openFor / 10)
        }
    }

    public mutating func recordSuccess() {
        self.failures = 0
        self.state = .closed
    }

    public mutating func recordFailure(now: ContinuousClock.Instant) {
        self.failures += 1
        if self.state == .halfOpen || self.failures >= self.failureThreshold {
            self.state = .open(until: now + self.openFor)
        }
    }

    /// A fault that fails every send (credentials, configuration): open at once.
    public mutating func trip(now: ContinuousClock.Instant) {
        self.failures = self.failureThreshold
        self.state = .open(until: now + self.openFor)
    }

    /// 0 closed, 1 open, 2 half-open (the `notify_push_breaker_state` gauge).
    public var metricValue: Int {
        switch self.state {
        case .closed: 0
        case .open: 1
        case .halfOpen: 2
        }
    }
}
