import Synchronization

/// Places per route (requests in flight, or sockets open) against each route's `maxInFlight`, for one process.
final class RouteSlots: Sendable {
    private let counts = Mutex<[String: Int]>([:])

    /// Takes a place on `route`, or `false` when it has `maxInFlight` already.
    func take(_ route: UpstreamRoute) -> Bool {
        self.counts.withLock { counts in
            guard counts[route.channel, default: 0] < route.maxInFlight else { return false }
            counts[route.channel, default: 0] += 1
            return true
        }
    }

    func give(_ channel: String) {
        self.counts.withLock { $0[channel, default: 1] -= 1 }
    }
}
