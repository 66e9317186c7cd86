import Synchronization

/// Sends the command batches of concurrent callers together, as one pipeline: while round trips are on their way,
/// the next batches gather. Under load that is one round trip (one write, one wake-up of Redis) for many small
/// batches instead of one each; alone, a batch goes out at once. A few round trips may be out at once (on the
/// client's different connections), so one stalled connection does not hold up every caller. Each caller gets its
/// own replies, in order; a transport failure fails every batch of that round trip, as it would have failed each.
public final class CoalescingPipeline: Sendable {
    private struct Entry {
        var commands: [RedisCommand]
        var continuation: CheckedContinuation<[RedisValue], any Error>
    }

    private struct State {
        var entries: [Entry] = []
        /// Round trips on their way.
        var sending = 0
    }

    /// Round trips out at once, at most.
    public let maxInFlight: Int
    /// Commands per round trip, about (a caller's batch is never split).
    public static let maxCommands = 512

    private let client: RedisClient
    private let state = Mutex(State())
    private let sent = Atomic<Int>(0)

    /// Round trips made so far.
    public var roundTrips: Int { self.sent.load(ordering: .relaxed) }

    public init(client: RedisClient, maxInFlight: Int = 4) {
        self.client = client
        self.maxInFlight = max(1, maxInFlight)
    }

    /// Like ``RedisClient/send(batch:)``, sent together with the batches asked for meanwhile.
    public func send(batch commands: [RedisCommand]) async throws -> [RedisValue] {
        try await withCheckedThrowingContinuation { continuation in
            let startSending = self.state.withLock { state -> Bool in
                state.entries.append(Entry(commands: commands, continuation: continuation))
                guard state.sending < self.maxInFlight else { return false }
                state.sending += 1
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
                var count = 0
                var taken = 0
                while taken < state.entries.count, taken == 0 || count < Self.maxCommands {
                    count += state.entries[taken].commands.count
                    taken += 1
                }
                if taken == 0 {
                    state.sending -= 1
                    return []
                }
                defer { state.entries.removeFirst(taken) }
                return Array(state.entries[..<taken])
            }
            guard !entries.isEmpty else { return }
            let commands = entries.count == 1 ? entries[0].commands : entries.flatMap(\.commands)
            self.sent.add(1, ordering: .relaxed)
            do {
                let replies = try await self.client.send(batch: commands)
                guard replies.count == commands.count else {
                    throw RedisClientError(
                        .unexpectedReply, "\(replies.count) replies to a pipeline of \(commands.count) commands")
                }
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
