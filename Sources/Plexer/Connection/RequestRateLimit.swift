import NIOCore

/// A socket's request budget: a token bucket of `burst` requests refilled at `perSecond`. A request over budget is
/// refused with a retry hint; a client that keeps sending refused requests (as many as the burst, with none
/// allowed in between) is closed.
struct RequestRateLimit {
    enum Decision: Equatable {
        case allowed
        case refused(retryMs: Int)
        case close
    }

    let perSecond: Double
    let burst: Double
    private var tokens: Double
    private var updated: NIODeadline
    private var refusedInARow = 0

    init(perSecond: Int, burst: Int, now: NIODeadline) {
        self.perSecond = Double(perSecond)
        self.burst = Double(burst)
        self.tokens = Double(burst)
        self.updated = now
    }

    mutating func take(now: NIODeadline) -> Decision {
        let elapsed = Double(max(0, (now - self.updated).nanoseconds)) / 1e9
        self.tokens = min(self.burst, self.tokens + elapsed * self.perSecond)
        self.updated = now
        if self.tokens >= 1 {
            self.tokens -= 1
            self.refusedInARow = 0
            return .allowed
        }
        self.refusedInARow += 1
        if Double(self.refusedInARow) > self.burst { return .close }
        return .refused(retryMs: Int(((1 - self.tokens) / self.perSecond * 1_000).rounded(.up)))
    }
}
