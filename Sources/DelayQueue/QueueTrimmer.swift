import Logging
import Metrics
import NotifyCore
import ServiceLifecycle

/// Applies the queue's retention rules to every shard every ``DelayQueueConfiguration/trimIntervalMs``:
/// tombstones and dead letters would otherwise only grow. Every process that writes to the queue runs one (API,
/// worker, dev), so a deployment without consumers is bounded too; several at once are harmless.
public struct QueueTrimmer: Service {
    let queue: DelayQueue
    let logger: Logger
    private static let tombstones = Counter(label: "notify_queue_tombstones_trimmed_total")
    private static let deadLetters = Counter(label: "notify_queue_dead_letters_expired_total")

    public init(queue: DelayQueue, logger: Logger) {
        self.queue = queue
        self.logger = logger
    }

    public func run() async throws {
        let interval = Duration.milliseconds(self.queue.configuration.trimIntervalMs)
        do {
            try await cancelWhenGracefulShutdown {
                while true {
                    await self.trimAll()
                    try await Task.sleep(for: interval)
                }
            }
        } catch is CancellationError {
            return  // shutdown
        }
    }

    /// One pass over every shard; a shard that fails is tried again on the next pass, and does not hold up the
    /// others.
    public func trimAll() async {
        for shard in self.queue.shards.all {
            do {
                let summary = try await self.queue.trim(shard: shard)
                Self.tombstones.increment(by: summary.tombstones)
                Self.deadLetters.increment(by: summary.deadLetters)
            } catch {
                self.logger.warning(
                    "queue retention pass failed", metadata: ["queue.shard": "\(shard)", "error": "\(error)"])
            }
        }
    }
}
