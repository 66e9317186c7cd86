import DelayQueue
import Foundation
import NIOCore
import NIOHTTP1
import NotifyCore
import Testing

@testable import PushWorker

@Suite("Push rendering", .timeLimit(.minutes(1)))
struct PushRenderingTests {
    static func message(_ event: String, title: String, collapse: String? = "general", ttlMs: Int? = nil) -> PushMessage
    {
        PushMessage(
            eventID: event, dueMs: 1_700_000_000_000, notificationID: "n-\(event)", type: "message", room: "general",
            push: .init(title: title, body: "body of \(title)", data: ["k": "v"], collapseKey: collapse, ttlMs: ttlMs))
    }

    @Test("coalesced pushes carry the newest title and data and the documented body")
    func coalescingRule() throws {
        let parts = try [("1700000000002-0", "second"), ("1700000000001-5", "first"), ("1700000000003-0", "third")]
            .map {
                (
                    jobID: try JobID(notificationID: "n-\($0.0.prefix(13))", userID: "alice"),
                    message: Self.message($0.0, title: $0.1)
                )
            }
        let push = try #require(OutgoingPush.coalescing(parts, badge: 7))
        #expect(push.title == "third")
        #expect(push.body == "3 new messages")
        #expect(push.data["coalesced"] == "3" && push.data["k"] == "v" && push.data["event_id"] == "1700000000003-0")
        #expect(push.eventIDs == ["1700000000001-5", "1700000000002-0", "1700000000003-0"])
        let single = try #require(OutgoingPush.coalescing([parts[0]], badge: 1))
        #expect(single.body == "body of second" && single.data["coalesced"] == nil)
    }

    @Test("message ids are stable per job and device, and apns-id is a canonical UUID")
    func messageIDs() throws {
        let push = OutgoingPush(jobID: try JobID("n1/alice"), message: Self.message("1-0", title: "t"), badge: 1)
        #expect(push.messageID(deviceID: "a") == push.messageID(deviceID: "a"))
        #expect(push.messageID(deviceID: "a") != push.messageID(deviceID: "b"))
        let uuid = push.uuid(deviceID: "a")
        #expect(uuid.wholeMatch(of: /[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}/) != nil)
    }

    @Test("the APNs payload has aps beside the data and shortens a body that would pass 4 KB")
    func apnsPayload() throws {
        var message = Self.message("1-0", title: "Hi")
        let push = OutgoingPush(jobID: try JobID("n1/alice"), message: message, badge: 4)
        let json = try #require(
            try JSONSerialization.jsonObject(with: Data(APNsSender.payload(push))) as? [String: Any])
        let aps = try #require(json["aps"] as? [String: Any])
        #expect(aps["badge"] as? Int == 4 && aps["thread-id"] as? String == "general")
        #expect((aps["alert"] as? [String: String])?["title"] == "Hi")
        #expect(json["event_id"] as? String == "1-0" && json["k"] as? String == "v")
        message.push.body = String(repeating: "x", count: 3_000)
        message.push.data = ["big": String(repeating: "y", count: 1_500)]
        let long = try APNsSender.payload(OutgoingPush(jobID: try JobID("n1/alice"), message: message, badge: 1))
        #expect(long.count <= 4_096)
        message.push.data = ["big": String(repeating: "y", count: 5_000)]
        #expect(throws: (any Error).self) {
            try APNsSender.payload(OutgoingPush(jobID: try JobID("n1/alice"), message: message, badge: 1))
        }
    }

    @Test("the FCM message sets the token, string data and each platform's collapse, TTL and priority")
    func fcmMessage() throws {
        let push = OutgoingPush(
            jobID: try JobID("n1/alice"), message: Self.message("1-0", title: "Hi", ttlMs: 60_000), badge: 2)
        let json = try #require(
            try JSONSerialization.jsonObject(with: Data(FCMSender.body(push, token: "tok"))) as? [String: Any])
        let message = try #require(json["message"] as? [String: Any])
        #expect(message["token"] as? String == "tok")
        #expect((message["data"] as? [String: String])?["event_id"] == "1-0")
        let android = try #require(message["android"] as? [String: Any])
        #expect(android["ttl"] as? String == "60s" && android["collapse_key"] as? String == "general")
        #expect(android["priority"] as? String == "HIGH")
        let apns = try #require(message["apns"] as? [String: Any])
        #expect((apns["headers"] as? [String: String])?["apns-collapse-id"] == "general")
        #expect((message["notification"] as? [String: String])?["title"] == "Hi")
    }

    @Test("gateways get the time to live that is left, and APNs the moment it ends")
    func remainingTTL() throws {
        let message = Self.message("1-0", title: "t", ttlMs: 60_000)
        let push = OutgoingPush(jobID: try JobID("n1/alice"), message: message, badge: 1, nowMs: 1_700_000_050_000)
        #expect(push.ttlSeconds == 10)
        #expect(push.expiresAtSeconds == 1_700_000_060)
        let late = OutgoingPush(jobID: try JobID("n1/alice"), message: message, badge: 1, nowMs: 1_700_000_090_000)
        #expect(late.ttlSeconds == 0)
        #expect(push.topic?.wholeMatch(of: /[0-9a-f]{32}/) != nil, "RFC 8030 Topic: 32 characters autopush accepts")
    }

    @Test("a push past its time to live is expired")
    func expiry() {
        let message = Self.message("1-0", title: "t", ttlMs: 1_000)
        #expect(!message.expired(nowMs: 1_700_000_000_999))
        #expect(message.expired(nowMs: 1_700_000_001_001))
        let unlimited = Self.message("1-0", title: "t")
        #expect(!unlimited.expired(nowMs: 1_700_000_000_000 + 2_419_200_000), "4 weeks by default, as FCM and Web Push")
        #expect(unlimited.expired(nowMs: 1_700_000_000_000 + 2_419_200_001))
    }

    @Test("quiet hours at send time: inside they end at the local end, outside they do not apply")
    func quietHours() throws {
        let preferences = Preferences(
            quietHours: .init(start: "22:00", end: "07:00", timeZone: "Europe/Berlin"))
        // 2027-01-10 23:30 in Berlin (UTC+1) = 22:30Z; the end is 07:00 local = 06:00Z the next day.
        let inside = Date(timeIntervalSince1970: 1_799_620_200)
        let end = try #require(preferences.quietHoursEnd(after: inside))
        #expect(end.timeIntervalSince1970 == 1_799_647_200)
        #expect(preferences.quietHoursEnd(after: Date(timeIntervalSince1970: 1_799_665_200)) == nil, "12:00 local")
        let muted = Preferences(mutedRooms: ["general": nil], mutedTypes: ["call": Date(timeIntervalSince1970: 100)])
        #expect(muted.mutes(type: "message", room: "general", at: Date()))
        #expect(!muted.mutes(type: "call", room: "other", at: Date()), "a mute that ended")
    }

    @Test("Retry-After as seconds or an HTTP date")
    func retryAfter() {
        var call = GatewayCall(status: 429, headers: ["retry-after": "120"], body: .init())
        #expect(call.retryAfterMs == 120_000)
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        call.headers = ["retry-after": formatter.string(from: Date().addingTimeInterval(600))]
        #expect((590_000...600_000).contains(call.retryAfterMs ?? 0))
        call.headers = ["retry-after": "soon"]
        #expect(call.retryAfterMs == nil)
    }
}
