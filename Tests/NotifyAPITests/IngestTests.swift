import DelayQueue
import Foundation
import Hummingbird
import NotifyAPI
import NotifyCore
import NotifyTestSupport
import RedisClient
import Testing

@Suite("Ingest", .timeLimit(.minutes(3)))
struct IngestTests {
    @Test("each recipient gets an inbox entry and one push job due after the delay, scored by its event")
    func ingestWritesInboxAndSchedules() async throws {
        try await withIngestor { fixture in
            let request = NotificationRequest(
                recipients: ["alice", "bob", "carol", "alice"], type: .message, room: "r1",
                payload: .object(["text": .string("hi \"there\"\n")]), push: PushOptions(delayMs: 5_000, title: "T"))
            let result = try await fixture.ingestor.ingest(request, sender: "backend")
            #expect(result.recipients.map(\.userID) == ["alice", "bob", "carol"])
            #expect(result.recipients.allSatisfy { $0.push == "scheduled" && StreamID($0.eventID) != nil })

            let inbox = try await fixture.inbox.events(of: "bob", after: nil, limit: 10)
            #expect(inbox.count == 1)
            let event = try #require(inbox.first)
            #expect(event.id.description == result.recipients[1].eventID)
            let json = try JSONSerialization.jsonObject(with: Data(event.json.utf8)) as? [String: Any]
            #expect(json?["notification_id"] as? String == result.notificationID)
            #expect(json?["type"] as? String == "message" && json?["room"] as? String == "r1")
            #expect((json?["payload"] as? [String: Any])?["text"] as? String == "hi \"there\"\n")

            let jobs = try await fixture.queue.peek(limit: 10)
            #expect(Set(jobs.map(\.id)) == Set(["alice", "bob", "carol"].map { "\(result.notificationID)/\($0)" }))
            #expect(jobs.allSatisfy { $0.atMs == fixture.clock.nowMs + 5_000 })
            let shard = fixture.keys.shards.shard(of: "bob")
            let payload = try #require(
                try await fixture.client.send(
                    "HGET", .string("dq:{\(shard)}:job"), .string("\(result.notificationID)/bob")
                ).string)
            let push = try JSONSerialization.jsonObject(with: Data(payload.utf8)) as? [String: Any]
            #expect(push?["event_id"] as? String == result.recipients[1].eventID)
            #expect((push?["push"] as? [String: Any])?["title"] as? String == "T")

            // The app fetched up to bob's event: his push is cancelled, the others stay.
            let summary = try await fixture.queue.cancelUpTo(userID: "bob", eventID: event.id)
            #expect(summary.cancelled == 1)
            #expect(try await fixture.queue.peek(limit: 10).count == 2)
        }
    }

    @Test("the default delay applies without push options; push null writes the inbox only")
    func defaultsAndInboxOnly() async throws {
        try await withIngestor(configuration: IngestConfiguration(defaultDelayMs: 7_000)) { fixture in
            _ = try await fixture.ingestor.ingest(
                NotificationRequest(recipients: ["alice"], type: .reaction), sender: "backend")
            #expect(try await fixture.queue.peek(limit: 10).map(\.atMs) == [fixture.clock.nowMs + 7_000])
            let quiet = try await fixture.ingestor.ingest(
                NotificationRequest(recipients: ["bob"], type: .memberJoined, push: nil), sender: "backend")
            #expect(quiet.recipients.map(\.push) == ["off"])
            #expect(try await fixture.inbox.events(of: "bob", after: nil, limit: 10).count == 1)
            #expect(try await fixture.queue.peek(limit: 10).count == 1)
        }
    }

    @Test("a retry with the same idempotency key returns the same ids and writes nothing; another body conflicts")
    func idempotentRetry() async throws {
        try await withIngestor { fixture in
            let request = NotificationRequest(
                recipients: (0..<300).map { "user\($0)" }, type: .message, idempotencyKey: "order-42")
            let first = try await fixture.ingestor.ingest(request, sender: "backend")
            let second = try await fixture.ingestor.ingest(request, sender: "backend")
            #expect(first.notificationID == second.notificationID)
            #expect(first.recipients.map(\.eventID) == second.recipients.map(\.eventID))
            #expect(second.recipients.allSatisfy { $0.push == "duplicate" })
            #expect(try await fixture.inbox.events(of: "user7", after: nil, limit: 10).count == 1)
            #expect(try await fixture.queue.stats().total.counters["scheduled"] == 300)

            // Another API key with the same idempotency key is another notification.
            let other = try await fixture.ingestor.ingest(request, sender: "other-backend")
            #expect(other.notificationID != first.notificationID)

            var changed = request
            changed.payload = .object(["x": .number(1)])
            await #expect(throws: Problem.self) { try await fixture.ingestor.ingest(changed, sender: "backend") }
        }
    }

    @Test("a muted room or type still writes the inbox but schedules no push; an expired mute does not count")
    func mutes() async throws {
        try await withIngestor { fixture in
            let prefs = RedisArgument.string(fixture.keys.preferences("alice"))
            let past = fixture.clock.nowMs - 1
            try await fixture.client.send(
                "HSET", prefs, "mute:room:noisy", "0", "mute:type:reaction", "0", "mute:room:old", .string("\(past)"))
            func push(_ room: String, _ type: NotificationRequest.Kind) async throws -> String {
                let result = try await fixture.ingestor.ingest(
                    NotificationRequest(recipients: ["alice"], type: type, room: room), sender: "b")
                return result.recipients[0].push
            }
            #expect(try await push("noisy", .message) == "muted")
            #expect(try await push("calm", .reaction) == "muted")
            #expect(try await push("old", .message) == "scheduled")
            #expect(try await fixture.inbox.events(of: "alice", after: nil, limit: 10).count == 3)
            #expect(try await fixture.queue.peek(limit: 10).count == 1)
        }
    }

    @Test("quiet hours defer the push to their end in the user's time zone; a personal delay replaces the default")
    func quietHoursAndPersonalDelay() async throws {
        try await withIngestor { fixture in
            // 2026-01-15 23:30 UTC; the user is at UTC+1, quiet 22:00-07:00 local: due moves to 06:00 UTC.
            let now: Int64 = 1_768_519_800_000
            fixture.clock.set(now)
            try await fixture.client.send(
                "HSET", .string(fixture.keys.preferences("alice")), "quiet", "1320 420", "quiet_offsets", "0:60",
                "delay", "2000")
            let result = try await fixture.ingestor.ingest(
                NotificationRequest(recipients: ["alice"], type: .message), sender: "b")
            #expect(result.recipients[0].push == "deferred")
            #expect(try await fixture.queue.peek(limit: 1).first?.atMs == 1_768_543_200_000)

            fixture.clock.set(1_768_478_400_000)  // 12:00 UTC, 13:00 local: not quiet; personal delay 2 s
            _ = try await fixture.ingestor.ingest(
                NotificationRequest(recipients: ["alice"], type: .message), sender: "b")
            #expect(try await fixture.queue.peek(limit: 1).first?.atMs == 1_768_478_402_000)
        }
    }

    @Test("retract cancels every recipient's push, and a late retry of it schedules none")
    func retract() async throws {
        try await withIngestor { fixture in
            let request = NotificationRequest(
                recipients: (0..<50).map { "u\($0)" }, type: .call, idempotencyKey: "call-1")
            let sent = try await fixture.ingestor.ingest(request, sender: "b")
            let result = try #require(
                try await fixture.ingestor.retract(notificationID: sent.notificationID, sender: "b"))
            #expect(result.recipients == 50 && result.cancelled == 50)
            #expect(try await fixture.queue.peek(limit: 100).isEmpty)
            #expect(try await fixture.ingestor.retract(notificationID: "never-sent", sender: "b") == nil)

            var more = request
            more.idempotencyKey = "call-2"
            more.recipients = ["late"]
            let other = try await fixture.ingestor.ingest(more, sender: "b")
            #expect(
                try await fixture.ingestor.retract(notificationID: other.notificationID, sender: "b")?.cancelled == 1)
            let retried = try await fixture.ingestor.ingest(more, sender: "b")
            #expect(retried.recipients.map(\.push) == ["duplicate"])
        }
    }

    @Test("bad requests are refused with a problem naming the field")
    func validation() async throws {
        try await withIngestor(configuration: IngestConfiguration(maxRecipients: 10, maxPayloadBytes: 64)) {
            fixture in
            func problem(_ request: NotificationRequest) async -> Problem? {
                await #expect(throws: Problem.self) { try await fixture.ingestor.ingest(request, sender: "b") }
            }
            #expect(await problem(NotificationRequest(recipients: [], type: .message))?.status.code == 400)
            let tooMany = await problem(NotificationRequest(recipients: (0..<11).map { "u\($0)" }, type: .message))
            #expect(tooMany?.type == "/problems/too-many-recipients" && tooMany?.status.code == 413)
            let badUser = await problem(NotificationRequest(recipients: ["ok", "a b"], type: .message))
            #expect(badUser?.extensions["invalidFields"] == .strings(["recipients[1]"]))
            let big = await problem(
                NotificationRequest(
                    recipients: ["u"], type: .message, payload: .string(String(repeating: "x", count: 100))))
            #expect(big?.type == "/problems/payload-too-large")
            let delay = await problem(
                NotificationRequest(recipients: ["u"], type: .message, push: PushOptions(delayMs: -1)))
            #expect(delay?.extensions["invalidFields"] == .strings(["push.delay_ms"]))
            let peeked = try await fixture.queue.peek(limit: 10)
            #expect(peeked.isEmpty)
        }
    }
}
