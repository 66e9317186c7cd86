import Synchronization

/// Gathers the settlements of many job tasks and sends them together: while one batch is on its way, the next
/// gathers, so under load each round trip settles many jobs (grouped by shard, one script call per group).
final class SettleBatcher: Sendable {
    private struct Entry {
        var job: ClaimedJob
        var action: SettleAction
        var continuation: CheckedContinuation<SettleOutcome, any Error>
    }

    private struct State {
        var entries: [Entry] = []
        var isClosed = false
    }

    private let queue: DelayQueue
    private let state = Mutex(State())
    private let signal = WakeSignal()

    init(queue: DelayQueue) {
        self.queue = queue
    }

    /// Settles `job`; returns once its batch has been applied. After ``run()`` has ended it throws at once
    /// (the job's lease then expires and another claim retries it).
    func settle(_ job: ClaimedJob, _ action: SettleAction) async throws -> SettleOutcome {
        try await withCheckedThrowingContinuation { continuation in
            let accepted = self.state.withLock { state -> Bool in
                guard !state.isClosed else { return false }
                state.entries.append(Entry(job: job, action: action, continuation: continuation))
                return true
            }
            if accepted {
                self.signal.signal()
            } else {
                continuation.resume(throwing: CancellationError())
            }
        }
    }

    /// Sends batches until cancelled, then closes and sends what is left. Run it while jobs may settle.
    func run() async {
        while !Task.isCancelled {
            await self.signal.wait(upTo: .seconds(1))
            await self.flush()
        }
        self.state.withLock { $0.isClosed = true }
        await self.flush()
    }

    private func flush() async {
        let entries = self.state.withLock { state -> [Entry] in
            var taken: [Entry] = []
            swap(&taken, &state.entries)
            return taken
        }
        guard !entries.isEmpty else { return }
        do {
            let outcomes = try await self.queue.settle(batch: entries.map { ($0.job, $0.action) })
            for (entry, outcome) in zip(entries, outcomes) {
                entry.continuation.resume(returning: outcome)
            }
        } catch  where entries.count > 1 {
            // One entry that always fails (whatever the reason) must not fail every batch it joins while the
            // others retry: on a failed batch each entry is settled alone once, all at the same time (one after
            // another, a Redis that does not answer would cost a timeout per entry).
            await withTaskGroup(of: Void.self) { group in
                for entry in entries {
                    group.addTask {
                        do {
                            let outcome = try await self.queue.settle(batch: [(entry.job, entry.action)])
                            entry.continuation.resume(returning: outcome[0])
                        } catch {
                            entry.continuation.resume(throwing: error)
                        }
                    }
                }
            }
        } catch {
            for entry in entries {
                entry.continuation.resume(throwing: error)
            }
        }
    }
}
