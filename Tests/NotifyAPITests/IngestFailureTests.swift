import DelayQueue
import Foundation
import NotifyAPI
import NotifyCore
import NotifyTestSupport
import RedisClient
import Testing

/// Ingest when things go wrong or arrive together: Redis dying mid-request, retries racing each other.
@Suite("Ingest under failure", .timeLimit(.minutes(3)))
struct IngestFailureTests {
    /// Every recipient has exactly one inbox entry, and it is the event id the result names; exactly one push job
    /// per recipient exists.
    func expectExactlyOnce(_ result: IngestResult, users: [String], fixture: IngestFixture) async throws {
        #expect(result.recipients.count == users.count)
        var commands: [RedisCommand] = []
        for user in users {
            commands.append(RedisCommand("XRANGE", .string(fixture.keys.inbox(user)), "-", "+"))
        }
        let inboxes = try await fixture.client.send(batch: commands)
        let eventIDs = Dictionary(uniqueKeysWithValues: result.recipients.map { ($0.userID, $0.eventID) })
        var wrong = 0
        for (user, reply) in zip(users, inboxes) {
            let entries = reply.array ?? []
            if entries.count != 1 || entries.first?.array?.first?.string != eventIDs[user] { wrong += 1 }
        }
        #expect(wrong == 0, "\(wrong) recipients without exactly one inbox entry matching the result")
        let stats = try await fixture.queue.stats().total
        #expect(stats.scheduledLater + stats.dueNow == users.count)
        #expect(stats.counters["scheduled"] == users.count)
    }

    @Test("Redis killed during a 5,000-recipient ingest: a retry with the same key completes it exactly once")
    func redisKilledMidIngest() async throws {
        let aof = ["--appendonly", "yes", "--appendfsync", "always"]
        try await withIngestor(redisArguments: aof) { fixture in
            let users = (0..<5_000).map { "user\($0)" }
            let request = NotificationRequest(recipients: users, type: .message, idempotencyKey: "big-1")
            let observer = makeClient(for: fixture.server)
            let attempt = Task { try await fixture.ingestor.ingest(request, sender: "chat") }
            // Kill Redis as soon as the first writes land (polling: there is no event to await in Redis).
            let deadline = ContinuousClock.now + .seconds(10)
            while try await observer.send("DBSIZE").int == 0, ContinuousClock.now < deadline {}
            fixture.server.kill()
            let first = await attempt.result
            await observer.shutdown()
            try await fixture.server.restart()

            let retried = try await fixture.ingestor.ingest(request, sender: "chat")
            if case .success(let firstResult) = first {
                #expect(retried.notificationID == firstResult.notificationID)
            }
            try await self.expectExactlyOnce(retried, users: users, fixture: fixture)
        }
    }

    @Test("ten concurrent requests with one idempotency key: one inbox entry and one push per recipient")
    func concurrentSameKey() async throws {
        try await withIngestor { fixture in
            let users = (0..<300).map { "member\($0)" }
            let request = NotificationRequest(recipients: users, type: .message, idempotencyKey: "same")
            let results = try await withThrowingTaskGroup(of: IngestResult.self) { group in
                for _ in 0..<10 { group.addTask { try await fixture.ingestor.ingest(request, sender: "chat") } }
                var results: [IngestResult] = []
                for try await result in group { results.append(result) }
                return results
            }
            #expect(Set(results.map(\.notificationID)).count == 1)
            let ids = Set(results.map { $0.recipients.map(\.eventID) })
            #expect(ids.count == 1, "every answer names the same event ids")
            #expect(results.flatMap(\.recipients).count(where: { $0.push == "scheduled" }) == users.count)
            try await self.expectExactlyOnce(results[0], users: users, fixture: fixture)
        }
    }
}
