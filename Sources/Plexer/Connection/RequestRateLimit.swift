import NIOCore

/// A socket's request budget: a token bucket of `burst` requests refilled at `perSecond`. A request over budget is
/// refused with a retry hint. Refusals add to a penalty that drains at a quarter of the rate; past `burst` the
/// client is closed: a flood at twice the rate (every other request refused) gets there within seconds, a client
/// that only brushes the limit never does.
struct RequestRateLimit {
    enum Decision: Equatable {
        case allowed
        case refused(retryMs: Int)
        case close
    }

    let perSecond: Double
    let burst: Double
    private var tokens: Double
    private var penalty = 0.0
    private var updated: NIODeadline

    init(perSecond: Int, burst: Int, now: NIODeadline) {
        self.perSecond = Double(perSecond)
        self.burst = Double(burst)
        self.tokens = Double(burst)
        self.updated = now
    }

    mutating func take(now: NIODeadline) -> Decision {
        let elapsed = Double(max(0, (now - self.updated).nanoseconds)) / 1e9
        self.tokens = min(self.burst, self.tokens + elapsed * self.perSecond)
        self.penalty = max(0, self.penalty - elapsed * self.perSecond / 4)
        self.updated = now
        if self.tokens >= 1 {
            self.tokens -= 1
            return .allowed
        }
        self.penalty += 1
        if self.penalty > self.burst { return .close }
        return .refused(retryMs: Int(((1 - self.tokens) / self.perSecond * 1_000).rounded(.up)))
    }
}
