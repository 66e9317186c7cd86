import Metrics
import Synchronization

/// The push workers' metrics (Prometheus names; no token, key or payload ever goes into a label). Metric handles
/// are made once per label set and reused: making one per event costs a registry lookup each time.
struct PushMetrics: Sendable {
    private static let counters = Mutex<[String: Counter]>([:])
    private static let timers = Mutex<[String: Metrics.Timer]>([:])

    private static func counter(_ label: String, _ dimensions: [(String, String)]) -> Counter {
        let key = label + dimensions.map { "|\($0.0)=\($0.1)" }.joined()
        return Self.counters.withLock { counters in
            if let counter = counters[key] { return counter }
            let counter = Counter(label: label, dimensions: dimensions)
            counters[key] = counter
            return counter
        }
    }

    private static func timer(_ label: String, _ dimensions: [(String, String)]) -> Metrics.Timer {
        let key = label + dimensions.map { "|\($0.0)=\($0.1)" }.joined()
        return Self.timers.withLock { timers in
            if let timer = timers[key] { return timer }
            let timer = Metrics.Timer(label: label, dimensions: dimensions)
            timers[key] = timer
            return timer
        }
    }

    /// Gateway answers by provider and outcome (`delivered`, `removed`, `retry`, `dead`, `credentials`).
    func send(_ provider: PushProvider, _ outcome: PushOutcome) {
        let name =
            switch outcome {
            case .delivered: "delivered"
            case .removeDevice: "removed"
            case .retry: "retry"
            case .deadLetter: "dead"
            case .refreshCredentialsAndRetry, .breakCircuit: "credentials"
            }
        Self.counter("notify_push_sends_total", [("provider", provider.rawValue), ("outcome", name)]).increment()
    }

    /// Sends held back by an open breaker, or skipped (`unconfigured`: the provider is off on this worker).
    func held(_ provider: PushProvider, _ why: String = "held") {
        Self.counter("notify_push_sends_total", [("provider", provider.rawValue), ("outcome", why)]).increment()
    }

    func latency(_ provider: PushProvider, _ duration: Duration) {
        Self.timer("notify_push_send_duration_seconds", [("provider", provider.rawValue)])
            .recordNanoseconds(
                duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000)
    }

    /// From the job's due time to the gateway's acceptance.
    func lag(milliseconds: Int64) {
        Self.timer("notify_push_due_to_sent_seconds", []).recordMilliseconds(max(0, milliseconds))
    }

    func removed(_ provider: PushProvider) {
        Self.counter("notify_push_devices_removed_total", [("provider", provider.rawValue)]).increment()
    }

    /// Jobs by how they ended, once each (`sent`, `dropped`, `muted`, `expired`, `deferred`, `retried`, `dead`,
    /// `no_devices`), and jobs merged into another's push (`coalesced`, besides how they ended).
    func job(_ result: String, count: Int = 1) {
        Self.counter("notify_push_jobs_total", [("result", result)]).increment(by: count)
    }

    /// Breakers not closed (open or probing) for the provider's destinations: its gateway for APNs and FCM, each
    /// receiving host for webhooks and Web Push.
    func breakersOpen(_ provider: PushProvider, _ count: Int) {
        Gauge(label: "notify_push_breakers_open", dimensions: [("provider", provider.rawValue)]).record(count)
    }
}
