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

    /// Settlements waiting for the next batch (for tests).
    var waiting: Int { self.state.withLock { $0.entries.count } }

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
            // Each entry gets its own result: one that always fails (a script error on its keys) fails alone, and
            // never the batches it joins while it retries.
            let results = try await self.queue.settleEach(batch: entries.map { ($0.job, $0.action) })
            for (entry, result) in zip(entries, results) {
                entry.continuation.resume(with: result)
            }
        } catch {
            // The pipeline failed (a timeout, a lost connection): nobody can tell what was applied; each entry
            // retries on its own back-off (settling is idempotent per lease token).
            for entry in entries {
                entry.continuation.resume(throwing: error)
            }
        }
    }
}
