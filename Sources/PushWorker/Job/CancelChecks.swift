import Synchronization

/// The cancel checks right before each send of a (possibly coalesced) push, per member job: whether one found the
/// job acked or retracted (or its lease lost), and the checks its devices share. The devices of one job are sent
/// within the same milliseconds: a check asked a few milliseconds ago serves them all, whether its answer is in or
/// still on its way (an ack landing in that window is one landing just after a check), so a job's devices cost
/// one check, not one each.
final class CancelChecks: Sendable {
    private struct Member {
        /// The newest check: when it was asked, and its answer once in (`nil` inside: it failed).
        var asked: ContinuousClock.Instant?
        var askID = 0
        var answer: Bool??
        /// Sends waiting for the answer of a check, by the check's id.
        var waiters: [Int: [CheckedContinuation<Joined, Never>]] = [:]
    }

    /// Per member: a check found it cancelled.
    let flags: Mutex<[Bool]>
    private let members: Mutex<[Member]>
    let reuse: Duration
    let now: @Sendable () -> ContinuousClock.Instant

    init(
        count: Int, reuse: Duration = .milliseconds(5),
        now: @escaping @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now }
    ) {
        self.reuse = reuse
        self.now = now
        self.flags = Mutex([Bool](repeating: false, count: count))
        self.members = Mutex([Member](repeating: Member(), count: count))
    }

    /// Whether member `index` may proceed: the answer of a check asked within the reuse window (waiting for it
    /// if it is still on its way), or a new check's. `nil`: the check failed, so it cannot tell.
    func mayProceed(_ index: Int, check: () async throws -> Bool) async -> Bool? {
        while true {
            // A cancel is final: once any check saw it, no later answer (on another connection) undoes it.
            if self.flags.withLock({ $0[index] }) { return false }
            let now = self.now()
            let step = self.members.withLock { members -> Step in
                let member = members[index]
                if let asked = member.asked, now - asked < self.reuse {
                    switch member.answer {
                    case .some(.some(let proceeds)): return .known(proceeds)
                    case .none: return .join(askID: member.askID)
                    case .some(.none): break  // it failed: ask again
                    }
                }
                // The answer describes Redis as it was after this instant (the check is sent after it is asked),
                // so its reuse window starts here, not when the reply arrives.
                members[index].askID += 1
                members[index].asked = now
                members[index].answer = .none
                return .ask(askID: members[index].askID)
            }
            switch step {
            case .known(let proceeds):
                return proceeds
            case .join(let askID):
                if case .answered(let answer) = await self.join(index, askID: askID) { return answer }
            // Superseded by a newer check before it could wait: ask or join again.
            case .ask(let askID):
                return await self.ask(index, askID: askID, check: check)
            }
        }
    }

    private enum Step {
        case known(Bool)
        case join(askID: Int)
        case ask(askID: Int)
    }

    /// What a send that joined a check learns: the check's answer (`nil` inside: it failed), or that a newer
    /// check took its place before it could wait.
    private enum Joined {
        case answered(Bool?)
        case superseded
    }

    private func join(_ index: Int, askID: Int) async -> Joined {
        await withCheckedContinuation { continuation in
            let now = self.members.withLock { members -> Joined? in
                guard members[index].askID == askID else { return .superseded }
                if let answer = members[index].answer { return .answered(answer) }
                members[index].waiters[askID, default: []].append(continuation)
                return nil
            }
            if let now { continuation.resume(returning: now) }
        }
    }

    private func ask(_ index: Int, askID: Int, check: () async throws -> Bool) async -> Bool? {
        let answer: Bool?
        do {
            answer = try await check()
        } catch {
            answer = nil
        }
        if answer == false { self.flags.withLock { $0[index] = true } }
        let waiters = self.members.withLock { members -> [CheckedContinuation<Joined, Never>] in
            if members[index].askID == askID { members[index].answer = .some(answer) }
            return members[index].waiters.removeValue(forKey: askID) ?? []
        }
        for waiter in waiters { waiter.resume(returning: .answered(answer)) }
        return answer
    }

    /// Sends waiting for a check's answer (for tests).
    func waiting(_ index: Int) -> Int {
        self.members.withLock { $0[index].waiters.values.reduce(0) { $0 + $1.count } }
    }
}
