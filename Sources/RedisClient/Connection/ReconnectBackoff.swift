/// Capped exponential backoff with jitter, for reconnects.
struct ReconnectBackoff: Sendable {
    var initialDelayMs: Int
    var maxDelayMs: Int

    /// The delay before attempt number `failures + 1`, given `failures` failed attempts in a row.
    ///
    /// Full jitter over the upper half of the window, so a fleet of clients that lost Redis together does not
    /// reconnect in lock step.
    func delayMs(afterFailures failures: Int) -> Int {
        guard failures > 0 else { return 0 }
        let exponent = min(failures - 1, 30)
        let ceiling = min(self.maxDelayMs, self.initialDelayMs << exponent)
        let floor = ceiling / 2
        return floor + Int.random(in: 0...max(0, ceiling - floor))
    }
}
