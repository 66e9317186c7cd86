import Crypto
import DelayQueue
import Foundation
import NotifyCore

/// What goes out to every device of a user for one job, or for several coalesced ones: the newest job's content,
/// how many it stands for, and the user's badge.
public struct OutgoingPush: Sendable, Hashable {
    /// The newest job of the group: its id keys the message ids gateways and receivers see.
    public var jobID: JobID
    public var message: PushMessage
    /// Jobs this push stands for (1 = not coalesced).
    public var count: Int
    /// The inbox events it covers, oldest first.
    public var eventIDs: [String]
    /// The user's unacknowledged pushes (their pending set), for the app icon.
    public var badge: Int
    /// When it is sent (ms): gateways get the time to live that is left, not the whole of it.
    public var nowMs: Int64

    public init(
        jobID: JobID, message: PushMessage, count: Int = 1, eventIDs: [String]? = nil, badge: Int, nowMs: Int64? = nil
    ) {
        self.jobID = jobID
        self.message = message
        self.count = count
        self.eventIDs = eventIDs ?? [message.eventID]
        self.badge = badge
        self.nowMs = nowMs ?? message.dueMs
    }

    /// The coalescing rule: pushes of one user with the same collapse key that are due together become one with
    /// the newest push's title and data, and, when there are several, the body "<n> new messages" (or
    /// "notifications" for other types) and `data.coalesced = "<n>"`.
    public static func coalescing(
        _ parts: [(jobID: JobID, message: PushMessage)], badge: Int, nowMs: Int64? = nil
    ) -> OutgoingPush? {
        let sorted = parts.sorted { (StreamID($0.message.eventID) ?? .zero) < (StreamID($1.message.eventID) ?? .zero) }
        guard let newest = sorted.last else { return nil }
        return OutgoingPush(
            jobID: newest.jobID, message: newest.message, count: sorted.count,
            eventIDs: sorted.map(\.message.eventID), badge: badge, nowMs: nowMs)
    }

    public var title: String? { self.message.push.title }

    public var body: String? {
        guard self.count > 1 else { return self.message.push.body }
        return "\(self.count) new \(self.message.type == "message" ? "messages" : "notifications")"
    }

    /// The backend's data plus what every app needs to fetch the event: string values only (FCM's rule).
    public var data: [String: String] {
        var data = self.message.push.data ?? [:]
        data["notification_id"] = self.message.notificationID
        data["event_id"] = self.message.eventID
        if self.count > 1 { data["coalesced"] = "\(self.count)" }
        return data
    }

    /// Seconds the gateway may still keep trying: what is left of the time to live (default 4 weeks, the
    /// longest FCM and Web Push allow) after the time since the push was due.
    public var ttlSeconds: Int {
        Int(max(0, self.message.dueMs + Int64(self.message.ttlMs) - self.nowMs) / 1_000)
    }

    /// When the gateway should give up (APNs' `apns-expiration`, epoch seconds).
    public var expiresAtSeconds: Int64 { (self.message.dueMs + Int64(self.message.ttlMs)) / 1_000 }

    public var isHighPriority: Bool { self.message.push.priority != "normal" }

    /// No title and no body: a silent push that wakes the app to fetch.
    public var isSilent: Bool { self.title == nil && self.body == nil }

    /// The collapse key as RFC 8030's `Topic` (at most 32 characters of the URL-safe alphabet; autopush takes
    /// `[A-Za-z0-9]` only): hex of a digest, so any key fits and distinct keys stay distinct.
    public var topic: String? {
        self.message.push.collapseKey.map { key in
            Hex.encode(SHA256.hash(data: Array(key.utf8)).prefix(16))
        }
    }

    /// 16 bytes that identify this push to one device, the same on every retry (APNs' `apns-id`, the webhook's
    /// `webhook-id`), so receivers can drop a duplicate after a worker crash.
    public func messageID(deviceID: String) -> [UInt8] {
        Array(SHA256.hash(data: Array("\(self.jobID)\u{0}\(deviceID)".utf8)).prefix(16))
    }

    /// ``messageID(deviceID:)`` as a lowercase UUID (APNs wants that form).
    public func uuid(deviceID: String) -> String {
        var bytes = self.messageID(deviceID: deviceID)
        bytes[6] = (bytes[6] & 0x0f) | 0x40  // version 4 layout, as APNs checks the canonical form
        bytes[8] = (bytes[8] & 0x3f) | 0x80
        let hex = Hex.encode(bytes)
        let parts = [0..<8, 8..<12, 12..<16, 16..<20, 20..<32].map { range in
            String(
                hex[
                    hex.index(
                        hex.startIndex, offsetBy: range.lowerBound)..<hex.index(
                            hex.startIndex, offsetBy: range.upperBound)])
        }
        return parts.joined(separator: "-")
    }
}

extension StreamID {
    static let zero = StreamID(milliseconds: 0, sequence: 0)
}
