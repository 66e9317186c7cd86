import DelayQueue
import Synchronization

/// Gathers jobs of one user and collapse key that are due together: the first to arrive waits `window` for the
/// others, then one delivery serves them all and each gets its own result.
final class Coalescer: Sendable {
    struct Member: Sendable {
        var job: ClaimedJob
        var control: JobControl
        var message: PushMessage
    }

    private enum Role {
        case leader
        case served(JobResult)
    }

    private let groups = Mutex<[String: [(Member, CheckedContinuation<Role, Never>)]]>([:])

    /// Joins the group of `key`; `deliver` gets every member (the leader first) and returns a result per member.
    func run(
        key: String, member: Member, window: Duration, deliver: @Sendable ([Member]) async -> [JobResult]
    ) async -> JobResult {
        let role = await withCheckedContinuation { (continuation: CheckedContinuation<Role, Never>) in
            // Deciding and joining under one lock: a leader that takes its group afterwards sees every member.
            let leads = self.groups.withLock { groups -> Bool in
                if groups[key] != nil {
                    groups[key]!.append((member, continuation))
                    return false
                }
                groups[key] = []
                return true
            }
            if leads { continuation.resume(returning: .leader) }
        }
        guard case .leader = role else {
            if case .served(let result) = role { return result }
            return .retry(afterMs: nil, error: "coalescing failed")
        }
        try? await Task.sleep(for: window)  // a cancelled sleep only shortens the wait
        let followers = self.groups.withLock { $0.removeValue(forKey: key) ?? [] }
        let results = await deliver([member] + followers.map(\.0))
        for (index, follower) in followers.enumerated() {
            follower.1.resume(returning: .served(results[index + 1]))
        }
        return results[0]
    }
}
