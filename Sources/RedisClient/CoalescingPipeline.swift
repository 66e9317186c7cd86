import Synchronization

/// Sends the command batches of concurrent callers together, as one pipeline: while one is on its way, the next
/// gathers. Under load that is one round trip (one write, one wake-up of Redis) for many small batches instead of
/// one each; alone, a batch goes out at once. Each caller gets its own replies, in order; a transport failure
/// fails every batch of that round trip, as it would have failed each.
public final class CoalescingPipeline: Sendable {
    private struct Entry {
        var commands: [RedisCommand]
        var continuation: CheckedContinuation<[RedisValue], any Error>
    }

    private struct State {
        var entries: [Entry] = []
        var sending = false
    }

    private let client: RedisClient
    private let state = Mutex(State())
    private let sent = Atomic<Int>(0)

    /// Round trips made so far.
    public var roundTrips: Int { self.sent.load(ordering: .relaxed) }

    public init(client: RedisClient) {
        self.client = client
    }

    /// Like ``RedisClient/send(batch:)``, sent together with the batches asked for meanwhile.
    public func send(batch commands: [RedisCommand]) async throws -> [RedisValue] {
        try await withCheckedThrowingContinuation { continuation in
            let startSending = self.state.withLock { state -> Bool in
                state.entries.append(Entry(commands: commands, continuation: continuation))
                guard !state.sending else { return false }
                state.sending = true
                return true
            }
            if startSending {
                Task { await self.sendGathered() }
            }
        }
    }

    /// Sends what has gathered until nothing waits.
    private func sendGathered() async {
        while true {
            let entries = self.state.withLock { state -> [Entry] in
                var taken: [Entry] = []
                swap(&taken, &state.entries)
                if taken.isEmpty { state.sending = false }
                return taken
            }
            guard !entries.isEmpty else { return }
            let commands = entries.count == 1 ? entries[0].commands : entries.flatMap(\.commands)
            self.sent.add(1, ordering: .relaxed)
            do {
                let replies = try await self.client.send(batch: commands)
                var start = 0
                for entry in entries {
                    let end = start + entry.commands.count
                    entry.continuation.resume(returning: Array(replies[start..<end]))
                    start = end
                }
            } catch {
                for entry in entries { entry.continuation.resume(throwing: error) }
            }
        }
    }
}
