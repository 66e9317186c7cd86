import NotifyCore
import ServiceLifecycle
import Synchronization

/// One provider's sender behind its in-flight limit and its circuit breakers (one per destination: the gateway
/// for APNs and FCM, each host for app-supplied URLs).
final class ProviderLane: Sendable {
    /// What became of one device's send.
    enum Result: Sendable {
        case answered(PushOutcome)
        /// Not sent: the breaker is open (or the worker is stopping); try again after this long.
        case held(ms: Int)
    }

    let sender: any PushSender
    private let limit: ConcurrencyLimit
    private let breakerTemplate: CircuitBreaker
    private let breakers = Mutex<(byDestination: [String: CircuitBreaker], open: Int)>(([:], 0))
    private let metrics = PushMetrics()

    /// Breakers kept at most; closed ones are forgotten beyond it (a closed breaker holds nothing worth keeping).
    static let maxBreakers = 10_000

    init(sender: any PushSender, maxInFlight: Int, breaker: CircuitBreaker) {
        self.sender = sender
        self.limit = ConcurrencyLimit(limit: maxInFlight)
        self.breakerTemplate = breaker
        self.metrics.breakersOpen(sender.provider, 0)
    }

    var provider: PushProvider { self.sender.provider }

    /// Prepares, then, holding this provider's slot and one of `global`, asks `mayProceed` right before the
    /// request (`false`: not sent, `nil` result) and the destination's breaker.
    func send(
        _ push: OutgoingPush, to entry: DeviceStore.Entry, global: ConcurrencyLimit, nowMs: @Sendable () -> Int64,
        mayProceed: @Sendable () async -> Bool
    ) async -> Result? {
        let prepared: PreparedPush
        switch await self.sender.prepare(push, to: entry) {
        case .failed(let outcome):
            self.metrics.send(self.provider, outcome)
            return .answered(outcome)
        case .ready(let ready):
            prepared = ready
        }
        // The provider's slot first: a provider whose gateway is slow queues on its own slots and never holds
        // the global ones the others need.
        return await self.limit.withPermit {
            await global.withPermit {
                if Task.isShuttingDownGracefully { return .held(ms: 0) }  // not started: give it back
                guard await mayProceed() else { return nil }
                let destination = prepared.destination
                let (allowed, retryInMs) = self.breakers.withLock { breakers in
                    breakers.byDestination[destination, default: self.breakerTemplate].allow(nowMs: nowMs())
                }
                guard allowed else {
                    self.metrics.held(self.provider)
                    return .held(ms: Int(retryInMs))
                }
                let started = ContinuousClock.now
                let outcome = await self.sender.execute(prepared)
                self.metrics.latency(self.provider, ContinuousClock.now - started)
                self.metrics.send(self.provider, outcome)
                self.record(outcome, destination: destination, nowMs: nowMs())
                return .answered(outcome)
            }
        }
    }

    private func record(_ outcome: PushOutcome, destination: String, nowMs: Int64) {
        let open = self.breakers.withLock { breakers -> Int? in
            var breaker = breakers.byDestination[destination, default: self.breakerTemplate]
            let wasClosed = breaker.isClosed
            switch outcome {
            case .delivered, .removeDevice, .deadLetter:
                breaker.recordSuccess()  // the gateway is up and answering
            case .retry(_, _, let backoff)
            where backoff == .apnsRateLimited || backoff == .fcmRateLimited || backoff == .webPushRateLimited:
                breaker.recordSuccess()  // a rate limit is about one device or sender, not an outage
            case .retry:
                breaker.recordFailure(nowMs: nowMs)
            case .refreshCredentialsAndRetry, .breakCircuit:
                breaker.trip(nowMs: nowMs)
            }
            if breaker.isClosed, breakers.byDestination.count >= Self.maxBreakers {
                breakers.byDestination.removeValue(forKey: destination)  // a closed breaker holds nothing
            } else {
                breakers.byDestination[destination] = breaker
            }
            guard wasClosed != breaker.isClosed else { return nil }
            breakers.open += breaker.isClosed ? -1 : 1
            return breakers.open
        }
        guard let open else { return }
        self.metrics.breakersOpen(self.provider, open)
    }
}
