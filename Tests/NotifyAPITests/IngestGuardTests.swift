import DelayQueue
import Foundation
import HTTPTypes
import NotifyAPI
import NotifyCore
import NotifyTestSupport
import RedisClient
import Testing

/// What stops a push after its ack or retract: records that outlive the jobs they guard, retracts that hold on
/// every shard, quiet hours that end when the user's clock says.
@Suite("Ingest guards", .timeLimit(.minutes(2)))
struct IngestGuardTests {
    static let day = 86_400_000

    @Test("only the API key that sent a notification may retract it; an admin may retract any")
    func retractOwnership() async throws {
        try await withIngestor { fixture in
            // "@" is a valid user id: the record's own fields must not collide with it (schemathesis found that).
            let sent = try await fixture.ingestor.ingest(
                NotificationRequest(recipients: ["alice", "@"], type: .message), sender: "chat")
            #expect(sent.recipients.map(\.push) == ["scheduled", "scheduled"])
            do {
                _ = try await fixture.ingestor.retract(notificationID: sent.notificationID, sender: "other-backend")
                Issue.record("another key's retract was accepted")
            } catch let problem as Problem {
                #expect(problem.status == .forbidden)
            }
            #expect(try await fixture.queue.peek(limit: 10).count == 2)
            let result = try await fixture.ingestor.retract(notificationID: sent.notificationID, sender: nil)
            #expect(result?.cancelled == 2)
        }
    }

    @Test("a retract after a partly applied ingest also stops the pushes its retry would schedule elsewhere")
    func retractAfterPartialIngest() async throws {
        try await withIngestor { fixture in
            let users = ["alice", "bob", "carol", "dave", "erin", "frank"]
            let shards = Set(users.map { fixture.keys.shards.shard(of: $0) })
            #expect(shards.count > 1)
            let request = NotificationRequest(recipients: users, type: .message, idempotencyKey: "k1")
            let sent = try await fixture.ingestor.ingest(request, sender: "chat")
            // The first attempt's call for bob's shard never ran: no record, inbox entry or job there.
            let missed = fixture.keys.shards.shard(of: "bob")
            let missedUsers = users.filter { fixture.keys.shards.shard(of: $0) == missed }
            var wipe = [
                RedisCommand("DEL", .string(fixture.keys.notificationRecord(sent.notificationID, shard: missed)))
            ]
            let queueKeys = fixture.queue.shardKeys(missed)
            for user in missedUsers {
                let job = RedisArgument.string("\(sent.notificationID)/\(user)")
                wipe += [
                    RedisCommand("ZREM", queueKeys[0], job), RedisCommand("HDEL", queueKeys[1], job),
                    RedisCommand("DEL", fixture.queue.pendingKey(shard: missed, userID: user)),
                    RedisCommand("DEL", .string(fixture.keys.inbox(user))),
                ]
            }
            for reply in try await fixture.client.send(batch: wipe) { _ = try reply.throwingIfError() }

            let retracted = try #require(
                try await fixture.ingestor.retract(notificationID: sent.notificationID, sender: "chat"))
            #expect(retracted.recipients == users.count - missedUsers.count)
            #expect(try await fixture.queue.peek(limit: 10).isEmpty)

            let retried = try await fixture.ingestor.ingest(request, sender: "chat")
            #expect(retried.notificationID == sent.notificationID)
            for recipient in retried.recipients where missedUsers.contains(recipient.userID) {
                #expect(recipient.push == "retracted")
            }
            #expect(try await fixture.queue.peek(limit: 10).isEmpty)
        }
    }

    @Test("the record and pending set outlive a push the user's own delay put 20 days out")
    func recordsOutliveTheirJobs() async throws {
        try await withIngestor { fixture in
            try await fixture.client.send(
                "HSET", .string(fixture.keys.preferences("alice")), "delay", .integer(20 * Self.day))
            let sent = try await fixture.ingestor.ingest(
                NotificationRequest(recipients: ["alice"], type: .message, push: PushOptions()), sender: "chat")
            #expect(try await fixture.queue.peek(limit: 1).first?.atMs == fixture.clock.nowMs + Int64(20 * Self.day))
            let shard = fixture.keys.shards.shard(of: "alice")
            let guardMs = fixture.queue.configuration.jobGuardMs
            let record = try await fixture.client.send(
                "PTTL", .string(fixture.keys.notificationRecord(sent.notificationID, shard: shard)))
            let pending = try await fixture.client.send(
                "PTTL", fixture.queue.pendingKey(shard: shard, userID: "alice"))
            for ttl in [record.int, pending.int] {
                #expect((ttl ?? 0) > 20 * Self.day + guardMs - 60_000)
            }
        }
    }

    @Test("the same request with its recipients in another order is the same idempotent request")
    func recipientOrder() async throws {
        try await withIngestor { fixture in
            var request = NotificationRequest(recipients: ["a", "b", "c"], type: .message, idempotencyKey: "order")
            let first = try await fixture.ingestor.ingest(request, sender: "chat")
            request.recipients = ["c", "a", "b"]
            let again = try await fixture.ingestor.ingest(request, sender: "chat")
            #expect(again.notificationID == first.notificationID)
            #expect(again.recipients.allSatisfy { $0.push == "duplicate" })
        }
    }

    /// Saves Berlin quiet hours 22:00-`end` with the preferences' clock at `savedAtMs`, ingests at `nowMs` with no
    /// delay, and returns the push's due time.
    func berlinQuietHoursEnd(savedAtMs: Int64, nowMs: Int64, end: String = "07:00") async throws -> Int64? {
        try await withIngestor { fixture in
            let store = PreferenceStore(
                client: fixture.client, keys: fixture.keys,
                now: { Date(timeIntervalSince1970: Double(fixture.clock.nowMs) / 1000) })
            fixture.clock.set(savedAtMs)
            try await store.put(
                userID: "alice",
                Preferences(quietHours: .init(start: "22:00", end: end, timeZone: "Europe/Berlin")))
            fixture.clock.set(nowMs)
            let result = try await fixture.ingestor.ingest(
                NotificationRequest(recipients: ["alice"], type: .message, push: PushOptions(delayMs: 0)),
                sender: "chat")
            #expect(result.recipients.first?.push == "deferred")
            return try await fixture.queue.peek(limit: 1).first?.atMs
        }
    }

    @Test("quiet hours end at 07:00 local time across both daylight-saving changes")
    func quietHoursAcrossDaylightSaving() async throws {
        // 2027-03-27 23:00 CET; the clocks go forward at 02:00, so 07:00 CEST is 05:00 UTC.
        #expect(
            try await self.berlinQuietHoursEnd(savedAtMs: 1_806_184_800_000, nowMs: 1_806_184_800_000)
                == 1_806_210_000_000)
        // 2027-10-30 23:00 CEST; the clocks go back at 03:00, so 07:00 CET is 06:00 UTC.
        #expect(
            try await self.berlinQuietHoursEnd(savedAtMs: 1_824_930_000_000, nowMs: 1_824_930_000_000)
                == 1_824_962_400_000)
    }

    @Test("quiet hours whose end the clocks jump over end at the jump")
    func quietHoursEndInTheGap() async throws {
        // 2027-03-28 02:30 does not exist in Berlin (02:00 CET -> 03:00 CEST at 01:00 UTC).
        #expect(
            try await self.berlinQuietHoursEnd(savedAtMs: 1_806_184_800_000, nowMs: 1_806_184_800_000, end: "02:30")
                == 1_806_195_600_000)
    }

    @Test("preferences saved years ago still know the time zone's offsets")
    func offsetsHorizon() async throws {
        // Saved 2023-11-14; on 2030-07-01 22:30 UTC it is 00:30 CEST: quiet until 07:00 CEST, 05:00 UTC.
        #expect(
            try await self.berlinQuietHoursEnd(savedAtMs: 1_700_000_000_000, nowMs: 1_909_175_400_000)
                == 1_909_198_800_000)
    }
}
