import Foundation
import NIOHTTP1
import NotifyAPI
import NotifyCore
import Testing

/// Latency assertions: `ops/test` runs them alone after the parallel suite, so they measure the code, not the
/// load of the other tests.
@Suite("API timing", .timeLimit(.minutes(2)))
struct APITimingTests {
    @Test("an ingested notification reaches the recipient's SSE stream within 100 ms, and only theirs")
    func liveDelivery() async throws {
        try await withAPIServer { api in
            let alice = try await SSEStream.open(api, token: try await api.token(for: "alice"))
            let bob = try await SSEStream.open(api, token: try await api.token(for: "bob"))
            #expect(alice.status == 200)
            var aliceEvents = alice.events.makeAsyncIterator()
            var bobEvents = bob.events.makeAsyncIterator()
            _ = try await alice.waitUntilReady(&aliceEvents)
            _ = try await bob.waitUntilReady(&bobEvents)

            let result = try await api.notify(
                #"{"recipients":["alice"],"type":"message","room":"r1","payload":{"text":"hi"}}"#)
            let event = try #require(try await aliceEvents.nextNotification())
            // From the moment Redis wrote the event (its id's time, same host clock) to the client reading it.
            let receivedMs = UInt64(Date().timeIntervalSince1970 * 1000)
            let writtenMs = try #require(StreamID(event.id ?? "")).milliseconds
            #expect(receivedMs - writtenMs < 100, "delivered \(receivedMs - writtenMs) ms after it was written")
            let recipient = try #require((result["recipients"] as? [[String: Any]])?.first)
            #expect(event.id == recipient["event_id"] as? String && event.event == "notification")
            let data = try JSONSerialization.jsonObject(with: Data((event.data ?? "").utf8)) as? [String: Any]
            #expect((data?["payload"] as? [String: Any])?["text"] as? String == "hi")
            #expect(data?["notification_id"] as? String == result["notification_id"] as? String)

            // Bob's stream got nothing of it: the next thing he sees is his own event.
            _ = try await api.notify(#"{"recipients":["bob"],"type":"reaction"}"#)
            let bobs = try #require(try await bobEvents.nextNotification())
            #expect(bobs.data?.contains("reaction") == true)
            alice.close()
            bob.close()
        }
    }
}
