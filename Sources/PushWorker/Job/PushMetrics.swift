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

    /// Sends held back by an open breaker, or skipped (`unconfigured`: the provider is off on this worker).
    func held(_ provider: PushProvider, _ why: String = "held") {
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

    /// Jobs by how they ended, once each (`sent`, `dropped`, `muted`, `expired`, `deferred`, `retried`, `dead`,
    /// `no_devices`), and jobs merged into another's push (`coalesced`, besides how they ended).
    func job(_ result: String, count: Int = 1) {
        Counter(label: "notify_push_jobs_total", dimensions: [("result", result)]).increment(by: count)
    }

    /// Breakers not closed (open or probing) for the provider's destinations: its gateway for APNs and FCM, each
    /// receiving host for webhooks and Web Push.
    func breakersOpen(_ provider: PushProvider, _ count: Int) {
        Gauge(label: "notify_push_breakers_open", dimensions: [("provider", provider.rawValue)]).record(count)
    }
}
