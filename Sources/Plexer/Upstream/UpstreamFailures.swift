import Logging
import Metrics
import NIOCore
import Synchronization

/// Upstream failures for operators: `notify_plexer_upstream_failures_total{route,reason}`, and a warning with the
/// underlying error (a TLS failure, a refused connection) at most once per route and reason every 10 s, since the
/// client only learns `upstream_unavailable`. No URL, header or secret is logged.
final class UpstreamFailures: Sendable {
    enum Reason: String {
        /// The route's limit of requests or sockets at once.
        case limit
        case timeout
        /// Refused, unreachable, or a failed handshake.
        case unreachable
        /// An answer or message over the route's size limit.
        case tooLarge = "too_large"
        /// It did not take messages fast enough.
        case tooSlow = "too_slow"
    }

    private let logger: Logger
    private let lastLogged = Mutex<[String: NIODeadline]>([:])

    init(logger: Logger) {
        self.logger = logger
    }

    func record(_ route: String, _ reason: Reason, error: (any Error)? = nil) {
        Counter(
            label: "notify_plexer_upstream_failures_total", dimensions: [("route", route), ("reason", reason.rawValue)]
        ).increment()
        let key = route + "/" + reason.rawValue
        let now = NIODeadline.now()
        let due = self.lastLogged.withLock { logged -> Bool in
            if let last = logged[key], now - last < .seconds(10) { return false }
            logged[key] = now
            return true
        }
        guard due else { return }
        var metadata: Logger.Metadata = ["plexer.route": "\(route)", "plexer.reason": "\(reason.rawValue)"]
        if let error { metadata["error"] = "\(String(describing: type(of: error))): \(error)" }
        self.logger.warning("upstream failure", metadata: metadata)
    }
}
