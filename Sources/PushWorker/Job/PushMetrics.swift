import Metrics

/// The push workers' metrics (Prometheus names; no token, key or payload ever goes into a label).
struct PushMetrics: Sendable {
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
        Counter(label: "notify_push_sends_total", dimensions: [("provider", provider.rawValue), ("outcome", name)])
            .increment()
    }

    /// Sends held back by an open breaker, or refused before sending (egress, missing provider).
    func held(_ provider: PushProvider, _ why: String) {
        Counter(label: "notify_push_sends_total", dimensions: [("provider", provider.rawValue), ("outcome", why)])
            .increment()
    }

    func latency(_ provider: PushProvider, _ duration: Duration) {
        Metrics.Timer(label: "notify_push_send_duration_seconds", dimensions: [("provider", provider.rawValue)])
            .recordNanoseconds(
                Int64(duration.components.seconds) * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000)
    }

    /// From the job's due time to the gateway's acceptance.
    func lag(milliseconds: Int64) {
        Metrics.Timer(label: "notify_push_due_to_sent_seconds").recordMilliseconds(max(0, milliseconds))
    }

    func removed(_ provider: PushProvider) {
        Counter(label: "notify_push_devices_removed_total", dimensions: [("provider", provider.rawValue)]).increment()
    }

    /// Jobs by how they ended (`sent`, `dropped`, `muted`, `expired`, `deferred`, `retried`, `dead`, `no_devices`)
    /// and jobs merged into another's push (`coalesced`).
    func job(_ result: String, count: Int = 1) {
        Counter(label: "notify_push_jobs_total", dimensions: [("result", result)]).increment(by: count)
    }

    /// 0 closed, 1 open, 2 half-open.
    func breaker(_ provider: PushProvider, _ value: Int) {
        Gauge(label: "notify_push_breaker_state", dimensions: [("provider", provider.rawValue)]).record(value)
    }
}
