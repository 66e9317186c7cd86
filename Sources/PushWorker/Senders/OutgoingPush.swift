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

    public init(jobID: JobID, message: PushMessage, count: Int = 1, eventIDs: [String]? = nil, badge: Int) {
        self.jobID = jobID
        self.message = message
        self.count = count
        self.eventIDs = eventIDs ?? [message.eventID]
        self.badge = badge
    }

    /// The coalescing rule: pushes of one user with the same collapse key that are due together become one with
    /// the newest push's title and data, and, when there are several, the body "<n> new messages" (or
    /// "notifications" for other types) and `data.coalesced = "<n>"`.
    public static func coalescing(_ parts: [(jobID: JobID, message: PushMessage)], badge: Int) -> OutgoingPush? {
        let sorted = parts.sorted { (StreamID($0.message.eventID) ?? .zero) < (StreamID($1.message.eventID) ?? .zero) }
        guard let newest = sorted.last else { return nil }
        return OutgoingPush(
            jobID: newest.jobID, message: newest.message, count: sorted.count,
            eventIDs: sorted.map(\.message.eventID), badge: badge)
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

    /// Seconds the gateway keeps trying (default 4 weeks, the longest FCM and Web Push allow).
    public var ttlSeconds: Int { (self.message.push.ttlMs ?? 2_419_200_000) / 1_000 }

    public var isHighPriority: Bool { self.message.push.priority != "normal" }

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
        let hex = bytes.map { String(format: "%02x", $0) }.joined()
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
