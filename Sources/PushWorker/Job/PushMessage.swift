import DelayQueue
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOFoundationEssentialsCompat
import NIOHTTP1

/// A push job's payload as the ingest script writes it: which event, for whom, and the push options the backend
/// gave (`Scripts/ingest.lua` in NotifyAPI).
public struct PushMessage: Decodable, Sendable, Hashable {
    public struct Options: Decodable, Sendable, Hashable {
        public var title: String?
        public var body: String?
        public var data: [String: String]?
        public var collapseKey: String?
        public var ttlMs: Int?
        /// `high` or `normal`.
        public var priority: String?

        enum CodingKeys: String, CodingKey {
            case title, body, data, priority
            case collapseKey = "collapse_key"
            case ttlMs = "ttl_ms"
        }

        public init(
            title: String? = nil, body: String? = nil, data: [String: String]? = nil, collapseKey: String? = nil,
            ttlMs: Int? = nil, priority: String? = nil
        ) {
            self.title = title
            self.body = body
            self.data = data
            self.collapseKey = collapseKey
            self.ttlMs = ttlMs
            self.priority = priority
        }
    }

    public var eventID: String
    public var dueMs: Int64
    public var notificationID: String
    public var type: String
    public var room: String?
    public var push: Options

    enum CodingKeys: String, CodingKey {
        case type, room, push
        case eventID = "event_id"
        case dueMs = "due_ms"
        case notificationID = "notification_id"
    }

    public init(
        eventID: String, dueMs: Int64, notificationID: String, type: String, room: String? = nil,
        push: Options = Options()
    ) {
        self.eventID = eventID
        self.dueMs = dueMs
        self.notificationID = notificationID
        self.type = type
        self.room = room
        self.push = push
    }

    /// Decodes a claimed job's payload.
    public init(payload: ByteBuffer) throws {
        self = try JSONDecoder().decode(PushMessage.self, from: payload)
    }

    /// The time to live: the backend's, or 4 weeks (the longest FCM and Web Push keep a message).
    public var ttlMs: Int { self.push.ttlMs ?? 2_419_200_000 }

    /// Whether the gateway would no longer deliver it: its time to live ran out since it was due.
    public func expired(nowMs: Int64) -> Bool {
        nowMs > self.dueMs + Int64(self.ttlMs)
    }
}
