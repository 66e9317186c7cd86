/// A circuit breaker for one destination (a provider's gateway, or one host of app-supplied URLs): after
/// `failureThreshold` consecutive failures (gateway errors, timeouts) or one credential fault, sends are held
/// back for `openForMs`; then one probe may go, and its result closes the breaker or opens it again. Held-back
/// pushes are deferred, not failed, so an outage loses nothing. Times are ms on the worker's clock.
public struct CircuitBreaker: Sendable {
    public enum State: Sendable, Hashable {
        case closed
        case open(untilMs: Int64)
        /// One probe is out.
        case halfOpen
    }

    public let failureThreshold: Int
    public let openForMs: Int64
    public private(set) var state: State = .closed
    private var failures = 0

    public init(failureThreshold: Int, openForMs: Int64) {
        self.failureThreshold = max(1, failureThreshold)
        self.openForMs = max(1, openForMs)
    }

    /// Whether a send may go now; when not, `retryInMs` says how long to hold it back.
    public mutating func allow(nowMs: Int64) -> (allowed: Bool, retryInMs: Int64) {
        switch self.state {
        case .closed:
            return (true, 0)
        case .open(let until) where nowMs < until:
            return (false, until - nowMs)
        case .open:
            self.state = .halfOpen
            return (true, 0)
        case .halfOpen:
            return (false, max(1, self.openForMs / 10))
        }
    }

    /// The gateway answered. An answer to a request sent before the breaker opened does not close it: only the
    /// probe's does.
    public mutating func recordSuccess() {
        if case .open = self.state { return }
        self.failures = 0
        self.state = .closed
    }

    public mutating func recordFailure(nowMs: Int64) {
        self.failures += 1
        if self.state == .halfOpen || self.failures >= self.failureThreshold {
            self.state = .open(untilMs: nowMs + self.openForMs)
        }
    }

    /// A fault that fails every send (credentials, configuration): open at once.
    public mutating func trip(nowMs: Int64) {
        self.failures = self.failureThreshold
        self.state = .open(untilMs: nowMs + self.openForMs)
    }

    public var isClosed: Bool { self.state == .closed }

    /// 0 closed, 1 open, 2 half-open.
    public var metricValue: Int {
        switch self.state {
        case .closed: 0
        case .open: 1
        case .halfOpen: 2
        }
    }
}
