import NotifyCore
import Synchronization

/// One provider's sender behind its in-flight limit and circuit breaker.
final class ProviderLane: Sendable {
    /// What became of one device's send.
    enum Result: Sendable {
        case answered(PushOutcome)
        /// The breaker is open: not sent, try again after this long.
        case held(Duration)
    }

    let sender: any PushSender
    private let limit: ConcurrencyLimit
    private let breaker: Mutex<CircuitBreaker>
    private let metrics = PushMetrics()

    init(sender: any PushSender, maxInFlight: Int, breaker: CircuitBreaker) {
        self.sender = sender
        self.limit = ConcurrencyLimit(limit: maxInFlight)
        self.breaker = Mutex(breaker)
        self.metrics.breaker(sender.provider, 0)
    }

    var provider: PushProvider { self.sender.provider }

    /// Sends unless the breaker holds it back; `mayProceed` runs right before the gateway call (after waiting for
    /// a slot), and `false` skips the send (`nil` result).
    func send(
        _ push: OutgoingPush, to entry: DeviceStore.Entry, mayProceed: @Sendable () async -> Bool
    ) async -> Result? {
        await self.limit.withPermit {
            guard await mayProceed() else { return nil }
            let (allowed, retryIn) = self.breaker.withLock { $0.allow(now: .now) }
            guard allowed else {
                self.metrics.held(self.provider, "held")
                return .held(retryIn)
            }
            let started = ContinuousClock.now
            let outcome = await self.sender.send(push, to: entry)
            self.metrics.latency(self.provider, ContinuousClock.now - started)
            self.metrics.send(self.provider, outcome)
            let state = self.breaker.withLock { breaker -> Int in
                switch outcome {
                case .delivered, .removeDevice, .deadLetter:
                    breaker.recordSuccess()  // the gateway is up and answering
                case .retry(_, _, let backoff)
                where backoff == .apnsRateLimited || backoff == .fcmRateLimited
                    || backoff == .webPushRateLimited:
                    breaker.recordSuccess()  // a rate limit is about this device or sender, not an outage
                case .retry:
                    breaker.recordFailure(now: .now)
                case .refreshCredentialsAndRetry, .breakCircuit:
                    breaker.trip(now: .now)
                }
                return breaker.metricValue
            }
            self.metrics.breaker(self.provider, state)
            return .answered(outcome)
        }
    }
}
