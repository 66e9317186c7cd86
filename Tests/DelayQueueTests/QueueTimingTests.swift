import DelayQueue
import NotifyCore
import NotifyTestSupport
import RedisClient
import Testing

/// Timing-sensitive tests. `ops/test` runs them in a separate pass, alone, so that the rest of the suite running
/// in parallel on two cores does not decide the result ("under a light load").
@Suite("Queue timing", .timeLimit(.minutes(3)))
struct QueueTimingTests {
    @Test("jobs fire no earlier than due and, at p99, within 50 ms after it")
    func precision() async throws {
        try await withQueue(configuration: DelayQueueConfiguration(maxSleepMs: 1_000), shards: 16, manualClock: false) {
            queue, _, _, server in
            let log = HandlerLog()
            let subscriber = RedisSubscriber(
                configuration: RedisClientConfiguration(url: server.url), logger: testLogger("subscriber"))
            let consumer = QueueConsumer(queue: queue, subscriber: subscriber, id: "precise", logger: testLogger("c")) {
                job, _ in
                log.ended(log.started(job, by: "precise"))
                return .done
            }
            try await withConsumers([consumer], subscriber: subscriber) {
                // Let the consumer settle into its sleep, so wake-ups are what gets the jobs out in time.
                try await Task.sleep(for: .milliseconds(300))
                for index in 0..<300 {
                    try await queue.schedule(
                        try job("p\(index)", for: "user\(index % 97)"), inMs: Int.random(in: 100...1_500))
                }
                try await log.waitForEnded(300)
            }
            let lateness = log.all.map { $0.startedMs - $0.job.dueAtMs }.sorted()
            #expect(log.all.allSatisfy { $0.job.claimedAtMs >= $0.job.dueAtMs }, "a job was claimed early")
            let p99 = lateness[Int(Double(lateness.count - 1) * 0.99)]
            #expect(
                p99 <= 50, "p99 lateness \(p99) ms; p50 \(lateness[lateness.count / 2]) ms; max \(lateness.last!) ms")
        }
    }
}
