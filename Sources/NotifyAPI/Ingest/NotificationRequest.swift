import NotifyCore

/// The body of `POST /v1/notifications`: one event for one or many recipients, and how to push it.
public struct NotificationRequest: Decodable, Sendable {
    /// What happened; apps and push templates branch on it, and users can mute a type.
    public enum Kind: String, Codable, Sendable, CaseIterable {
        case message
        case reaction
        case memberJoined = "member_joined"
        case memberLeft = "member_left"
        case call
        case custom
    }

    public var recipients: [String]
    public var type: Kind
    /// The room (chat, channel) the event belongs to: mutes and collapsing work per room.
    public var room: String?
    /// Free JSON for the app, delivered as is (size-limited).
    public var payload: JSONValue
    public var idempotencyKey: String?
    /// How to push; `nil` when the request said `"push": null` (inbox and live only). Absent means defaults.
    public var push: PushOptions?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case recipients, type, room, payload, push
        case idempotencyKey = "idempotency_key"
    }

    public init(
        recipients: [String], type: Kind, room: String? = nil, payload: JSONValue = .object([:]),
        idempotencyKey: String? = nil, push: PushOptions? = PushOptions()
    ) {
        self.recipients = recipients
        self.type = type
        self.room = room
        self.payload = payload
        self.idempotencyKey = idempotencyKey
        self.push = push
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.recipients = try container.decode([String].self, forKey: .recipients)
        self.type = try container.decode(Kind.self, forKey: .type)
        self.room = try container.decodeIfPresent(String.self, forKey: .room)
        self.payload = try container.decodeIfPresent(JSONValue.self, forKey: .payload) ?? .object([:])
        self.idempotencyKey = try container.decodeIfPresent(String.self, forKey: .idempotencyKey)
        if !container.contains(.push) {
            self.push = PushOptions()
        } else if try container.decodeNil(forKey: .push) {
            self.push = nil
        } else {
            self.push = try container.decode(PushOptions.self, forKey: .push)
        }
    }
}

/// Push options of a notification. Every recipient's push job carries them to the push worker.
public struct PushOptions: Codable, Sendable, Hashable {
    public enum Priority: String, Codable, Sendable {
        case high
        case normal
    }

    /// How long to wait for the app to fetch the event before pushing; `nil` = the user's or the default delay.
    public var delayMs: Int?
    public var title: String?
    public var body: String?
    /// String pairs handed to the app with the push (FCM allows strings only, so we do too).
    public var data: [String: String]?
    /// Pushes with the same key replace each other on the device.
    public var collapseKey: String?
    /// How long the gateway keeps trying to reach an offline device.
    public var ttlMs: Int?
    public var priority: Priority?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case title, body, data, priority
        case delayMs = "delay_ms"
        case collapseKey = "collapse_key"
        case ttlMs = "ttl_ms"
    }

    public init(
        delayMs: Int? = nil, title: String? = nil, body: String? = nil, data: [String: String]? = nil,
        collapseKey: String? = nil, ttlMs: Int? = nil, priority: Priority? = nil
    ) {
        self.delayMs = delayMs
        self.title = title
        self.body = body
        self.data = data
        self.collapseKey = collapseKey
        self.ttlMs = ttlMs
        self.priority = priority
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.delayMs = try container.decodeIfPresent(Int.self, forKey: .delayMs)
        self.title = try container.decodeIfPresent(String.self, forKey: .title)
        self.body = try container.decodeIfPresent(String.self, forKey: .body)
        self.data = try container.decodeIfPresent([String: String].self, forKey: .data)
        self.collapseKey = try container.decodeIfPresent(String.self, forKey: .collapseKey)
        self.ttlMs = try container.decodeIfPresent(Int.self, forKey: .ttlMs)
        self.priority = try container.decodeIfPresent(Priority.self, forKey: .priority)
    }
}
