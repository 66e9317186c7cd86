import Synchronization

/// The sockets one Plexer process holds, in all and per user, against `plexer.maxSockets` and
/// `plexer.maxSocketsPerUser`: a process that takes every socket offered runs out of files and memory, and one user
/// (or one stolen token) must not hold thousands of them.
final class SocketCounts: Sendable {
    private struct State {
        var total = 0
        var byUser: [String: Int] = [:]
    }

    private let state = Mutex(State())
    let maxSockets: Int
    let maxPerUser: Int

    init(maxSockets: Int, maxPerUser: Int) {
        self.maxSockets = maxSockets
        self.maxPerUser = maxPerUser
    }

    /// Takes a place for a new socket, or `false` when the process is full.
    func admitSocket() -> Bool {
        self.state.withLock { state in
            guard state.total < self.maxSockets else { return false }
            state.total += 1
            return true
        }
    }

    func releaseSocket() {
        self.state.withLock { $0.total -= 1 }
    }

    /// Counts an authenticated socket of `user`, or `false` when the user has as many as allowed.
    func admit(user: String) -> Bool {
        self.state.withLock { state in
            guard state.byUser[user, default: 0] < self.maxPerUser else { return false }
            state.byUser[user, default: 0] += 1
            return true
        }
    }

    func release(user: String) {
        self.state.withLock { state in
            let left = state.byUser[user, default: 1] - 1
            state.byUser[user] = left > 0 ? left : nil
        }
    }
}
