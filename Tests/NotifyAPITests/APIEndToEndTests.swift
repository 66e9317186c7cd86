import DelayQueue
import Foundation
import NIOHTTP1
import NotifyAPI
import NotifyCore
import RedisClient
import Testing

@Suite("API end to end", .timeLimit(.minutes(2)))
struct APIEndToEndTests {
    @Test("an ack cancels the push; without an ack the push becomes due after the delay")
    func ackCancelsPush() async throws {
        try await withAPIServer { api in
            let sent = try await api.notify(
                #"{"recipients":["alice","bob"],"type":"message","push":{"delay_ms":10000,"title":"New"}}"#)
            let recipients = try #require(sent["recipients"] as? [[String: Any]])
            let aliceEvent = try #require(recipients.first { $0["user_id"] as? String == "alice" }?["event_id"])

            let token = try await api.token(for: "alice")
            let ack = try await api.send(.POST, "/v1/ack", bearer: token, json: #"{"up_to":"\#(aliceEvent)"}"#)
            #expect(ack.status == 200)
            #expect(try ack.object()["cancelled"] as? Int == 1 && ack.object()["already_sent"] as? Int == 0)
            let again = try await api.send(.POST, "/v1/ack", bearer: token, json: #"{"ids":["\#(aliceEvent)"]}"#)
            #expect(try again.object()["cancelled"] as? Int == 0)
            #expect(try await api.queue.stats().total.counters["cancelled"] == 1)

            // Bob did not fetch: his job is due once the delay has passed, not before.
            var claimed: [ClaimedJob] = []
            for shard in 0..<api.queue.shards.count {
                claimed += try await api.queue.claim(shard: shard, max: 10).jobs
            }
            #expect(claimed.isEmpty)
            api.clock.advance(byMs: 10_000)
            for shard in 0..<api.queue.shards.count {
                claimed += try await api.queue.claim(shard: shard, max: 10).jobs
            }
            #expect(claimed.map(\.id.userID) == ["bob"])
        }
    }

    @Test("a stream ends with token-expired when its token expires")
    func streamEndsWithToken() async throws {
        let tokens = UserTokenConfiguration(
            issuer: APITestServer.issuer, audience: APITestServer.audience, hs256Secret: APITestServer.hs256Secret,
            leewaySeconds: 0)
        try await withAPIServer(tokens: tokens) { api in
            // Long enough that a loaded machine still opens the stream before the token runs out.
            let token = try await api.token(for: "alice", expiresIn: 4)
            let stream = try await SSEStream.open(api, token: token)
            // Everything until the stream ends (the suite's time limit bounds the wait).
            var received: [SSEEvent] = []
            for try await event in stream.events where event.comment == nil { received.append(event) }
            #expect(received.map(\.event) == ["token-expired"])
            #expect(received.last?.data == #"{"reconnect":true}"#)
        }
    }

    @Test("an idle stream gets a heartbeat comment every heartbeat interval, and events still come between them")
    func heartbeats() async throws {
        try await withAPIServer(api: APIConfiguration(heartbeatMs: 300)) { api in
            let stream = try await SSEStream.open(api, token: try await api.token(for: "alice"))
            var events = stream.events.makeAsyncIterator()
            _ = try await stream.waitUntilReady(&events)
            var heartbeats = 0
            while heartbeats < 2, let event = try await events.next() {
                #expect(event.comment == "heartbeat", "only heartbeats while idle: \(event)")
                heartbeats += 1
            }
            let id = try await api.notifyEventID()
            #expect(try await events.nextNotification()?.id == id)
            let next = try await events.next()
            #expect(next?.comment == "heartbeat")
            stream.close()
        }
    }

    @Test("a resume for a user whose inbox expired (or never existed) goes live, and says nothing was lost")
    func resumeWithoutInbox() async throws {
        try await withAPIServer { api in
            let stream = try await SSEStream.open(
                api, token: try await api.token(for: "newcomer"), lastEventID: "1700000000000-0")
            var events = stream.events.makeAsyncIterator()
            #expect(try await stream.waitUntilReady(&events).isEmpty)
            let id = try await api.notifyEventID(#"{"recipients":["newcomer"],"type":"message","push":null}"#)
            #expect(try await events.nextNotification()?.id == id)
            stream.close()
        }
    }

    @Test("a resume from an id whose successors were trimmed says events were lost, then replays what is kept")
    func resumeAfterTrimmedEvents() async throws {
        try await withAPIServer(ingest: IngestConfiguration(inboxMaxLength: 10)) { api in
            var ids: [String] = []
            for index in 0..<300 {
                ids.append(
                    try await api.notifyEventID(
                        #"{"recipients":["alice"],"type":"message","payload":{"n":\#(index)},"push":null}"#))
            }
            let stream = try await SSEStream.open(api, token: try await api.token(for: "alice"), lastEventID: ids[0])
            var events = stream.events.makeAsyncIterator()
            let before = try await stream.waitUntilReady(&events)
            let lost = try #require(before.first)
            #expect(lost.event == "lost")
            let replayed = before.dropFirst().compactMap(\.id)
            #expect(lost.data == #"{"oldest_id":"\#(replayed.first ?? "")"}"#)
            #expect(replayed.last == ids.last && replayed.count < 300 && replayed.count >= 10)
            stream.close()

            // A resume from a kept id loses nothing and says nothing.
            let kept = try await SSEStream.open(
                api, token: try await api.token(for: "alice"), lastEventID: replayed[replayed.count - 2])
            var keptEvents = kept.events.makeAsyncIterator()
            #expect(try await kept.waitUntilReady(&keptEvents).map(\.id) == [ids.last])
            kept.close()
        }
    }

    @Test("a client that missed 50 events resumes with Last-Event-ID and gets exactly those, in order, then live")
    func resumeAfterMissedEvents() async throws {
        try await withAPIServer { api in
            let token = try await api.token(for: "alice")
            let lastSeen = try await api.notifyEventID()
            var missed: [String] = []
            for index in 0..<50 {
                missed.append(
                    try await api.notifyEventID(
                        #"{"recipients":["alice"],"type":"message","payload":{"n":\#(index)},"push":null}"#))
            }
            let stream = try await SSEStream.open(api, token: token, lastEventID: lastSeen)
            var events = stream.events.makeAsyncIterator()
            let replayed = try await stream.waitUntilReady(&events)
            #expect(replayed.map(\.id) == missed.map(Optional.some))
            let liveID = try await api.notifyEventID(#"{"recipients":["alice"],"type":"call","push":null}"#)
            let next = try #require(try await events.nextNotification())
            #expect(next.id == liveID)
            stream.close()
        }
    }

    @Test("on shutdown an open SSE stream ends cleanly (the client reconnects elsewhere with its last id)")
    func streamEndsOnShutdown() async throws {
        try await withAPIServer { api in
            let stream = try await SSEStream.open(api, token: try await api.token(for: "alice"))
            var events = stream.events.makeAsyncIterator()
            _ = try await stream.waitUntilReady(&events)
            await api.shutdown()
            // The response ends (a clean end of the chunked body, no error) instead of hanging open.
            while let event = try await events.next() {
                #expect(event.comment != nil, "no event was sent: \(event)")
            }
        }
    }

    @Test("retrying with the same Idempotency-Key returns the same ids and creates nothing")
    func idempotentRetry() async throws {
        try await withAPIServer { api in
            let body = #"{"recipients":["alice","bob"],"type":"message"}"#
            let first = try await api.send(
                .POST, "/v1/notifications", bearer: api.apiKey, json: body, headers: [("Idempotency-Key", "k-1")])
            let second = try await api.send(
                .POST, "/v1/notifications", bearer: api.apiKey, json: body, headers: [("Idempotency-Key", "k-1")])
            #expect(first.status == 202 && second.status == 202)
            #expect(try first.object()["notification_id"] as? String == second.object()["notification_id"] as? String)
            let ids = { (response: TestResponse) in
                try (response.object()["recipients"] as? [[String: Any]])?.compactMap { $0["event_id"] as? String }
            }
            #expect(try ids(first) == ids(second))
            #expect(try await api.queue.stats().total.counters["scheduled"] == 2)
            let other = try await api.send(
                .POST, "/v1/notifications", bearer: api.apiKey, json: #"{"recipients":["carol"],"type":"call"}"#,
                headers: [("Idempotency-Key", "k-1")])
            #expect(other.status == 409 && other.problemType == "/problems/conflict")
        }
    }

    @Test("a muted room: the event is in the inbox, but no push is scheduled")
    func mutedRoom() async throws {
        try await withAPIServer { api in
            try await api.client.send("HSET", .string(api.keys.preferences("alice")), "mute:room:noisy", "0")
            let result = try await api.notify(#"{"recipients":["alice"],"type":"message","room":"noisy"}"#)
            #expect((result["recipients"] as? [[String: Any]])?.first?["push"] as? String == "muted")
            let inbox = try await api.send(.GET, "/v1/inbox", bearer: try await api.token(for: "alice"))
            #expect(try (inbox.object()["events"] as? [Any])?.count == 1)
            #expect(try await api.queue.peek(limit: 10).isEmpty)
        }
    }

    @Test("the inbox pages newest first with a cursor, and shows a user only their own events")
    func inboxPaging() async throws {
        try await withAPIServer { api in
            for index in 0..<5 {
                _ = try await api.notify(#"{"recipients":["alice"],"type":"message","payload":{"n":\#(index)}}"#)
            }
            _ = try await api.notify(#"{"recipients":["bob"],"type":"message"}"#)
            let token = try await api.token(for: "alice")
            let page1 = try await api.send(.GET, "/v1/inbox?limit=3", bearer: token).object()
            let events1 = try #require(page1["events"] as? [[String: Any]])
            #expect(events1.compactMap { ($0["payload"] as? [String: Any])?["n"] as? Int } == [4, 3, 2])
            let cursor = try #require(page1["next"] as? String)
            let page2 = try await api.send(.GET, "/v1/inbox?limit=3&before=\(cursor)", bearer: token).object()
            let events2 = try #require(page2["events"] as? [[String: Any]])
            #expect(events2.compactMap { ($0["payload"] as? [String: Any])?["n"] as? Int } == [1, 0])
            #expect(page2["next"] is NSNull)
            let oldest = try await api.send(.GET, "/v1/inbox?order=oldest&limit=1", bearer: token).object()
            #expect(((oldest["events"] as? [[String: Any]])?.first?["payload"] as? [String: Any])?["n"] as? Int == 0)
            // Empty or impossible windows are empty pages, not errors (found by schemathesis).
            for window in ["after=0&before=0", "before=0-0", "after=18446744073709551615-18446744073709551615"] {
                let empty = try await api.send(.GET, "/v1/inbox?\(window)", bearer: token)
                #expect(empty.status == 200, "\(window)")
                #expect(try (empty.object()["events"] as? [Any])?.isEmpty == true, "\(window)")
            }
            let bobs = try await api.send(.GET, "/v1/inbox", bearer: try await api.token(for: "bob")).object()
            #expect((bobs["events"] as? [Any])?.count == 1)
        }
    }

    @Test("retract cancels the pushes of every recipient; an unknown id is 404")
    func retract() async throws {
        try await withAPIServer { api in
            let sent = try await api.notify(#"{"recipients":["a","b","c"],"type":"call"}"#)
            let id = try #require(sent["notification_id"] as? String)
            let response = try await api.send(.DELETE, "/v1/notifications/\(id)", bearer: api.apiKey)
            #expect(response.status == 200)
            #expect(try response.object()["cancelled"] as? Int == 3)
            #expect(try await api.queue.peek(limit: 10).isEmpty)
            let unknown = try await api.send(.DELETE, "/v1/notifications/nope", bearer: api.apiKey)
            #expect(unknown.status == 404 && unknown.problemType == "/problems/not-found")
        }
    }

    @Test("admin endpoints show queue stats and dead letters to the admin key only")
    func admin() async throws {
        try await withAPIServer { api in
            _ = try await api.notify(#"{"recipients":["alice"],"type":"message"}"#)
            let stats = try await api.send(.GET, "/v1/admin/queues", bearer: api.adminKey)
            #expect(stats.status == 200)
            let total = try #require(try stats.object()["total"] as? [String: Any])
            #expect(total["scheduledLater"] as? Int == 1)
            #expect(try await api.send(.GET, "/v1/admin/dead", bearer: api.adminKey).status == 200)
            let replay = try await api.send(
                .POST, "/v1/admin/dead/replay", bearer: api.adminKey, json: #"{"id":"x/y"}"#)
            #expect(replay.status == 404)
            #expect(try await api.send(.GET, "/v1/admin/queues", bearer: api.apiKey).status == 401)
            #expect(try await api.send(.GET, "/v1/admin/queues").status == 401)
        }
    }
}
