import Foundation

/// A user's push preferences. They change pushes only, never the inbox or live delivery.
public struct Preferences: Codable, Sendable, Hashable {
    /// Quiet hours: pushes due inside them wait until they end, in the user's time zone.
    public struct QuietHours: Codable, Sendable, Hashable {
        /// `HH:MM`, local time.
        public var start: String
        public var end: String
        /// IANA time zone, e.g. `Europe/Berlin`.
        public var timeZone: String

        enum CodingKeys: String, CodingKey {
            case start, end
            case timeZone = "time_zone"
        }

        public init(start: String, end: String, timeZone: String) {
            self.start = start
            self.end = end
            self.timeZone = timeZone
        }
    }

    /// Muted rooms and types: name -> until when (ISO 8601), or `null` for ever.
    public var mutedRooms: [String: Date?]
    public var mutedTypes: [String: Date?]
    public var quietHours: QuietHours?
    /// The user's own push delay, replacing the default (a delay the backend sets explicitly still wins).
    public var pushDelayMs: Int?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case mutedRooms = "muted_rooms"
        case mutedTypes = "muted_types"
        case quietHours = "quiet_hours"
        case pushDelayMs = "push_delay_ms"
    }

    public init(
        mutedRooms: [String: Date?] = [:], mutedTypes: [String: Date?] = [:], quietHours: QuietHours? = nil,
        pushDelayMs: Int? = nil
    ) {
        self.mutedRooms = mutedRooms
        self.mutedTypes = mutedTypes
        self.quietHours = quietHours
        self.pushDelayMs = pushDelayMs
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.mutedRooms = try container.decodeIfPresent([String: Date?].self, forKey: .mutedRooms) ?? [:]
        self.mutedTypes = try container.decodeIfPresent([String: Date?].self, forKey: .mutedTypes) ?? [:]
        self.quietHours = try container.decodeIfPresent(QuietHours.self, forKey: .quietHours)
        self.pushDelayMs = try container.decodeIfPresent(Int.self, forKey: .pushDelayMs)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.mutedRooms, forKey: .mutedRooms)
        try container.encode(self.mutedTypes, forKey: .mutedTypes)
        try container.encode(self.quietHours, forKey: .quietHours)
        try container.encode(self.pushDelayMs, forKey: .pushDelayMs)
    }

    /// Minutes since local midnight of `HH:MM`.
    static func minutes(_ text: String) -> Int? {
        let parts = text.split(separator: ":")
        guard parts.count == 2, parts[0].count == 2, parts[1].count == 2, let hours = Int(parts[0]),
            let minutes = Int(parts[1]), (0..<24).contains(hours), (0..<60).contains(minutes)
        else { return nil }
        return hours * 60 + minutes
    }

    /// What is wrong (field, reason), or `nil`.
    public func problem(maxMutes: Int, maxDelayMs: Int) -> (field: String, reason: String)? {
        if self.mutedRooms.count + self.mutedTypes.count > maxMutes {
            return ("muted_rooms", "at most \(maxMutes) mutes")
        }
        for room in self.mutedRooms.keys where room.isEmpty || room.utf8.count > 200 {
            return ("muted_rooms", "room names are 1-200 bytes")
        }
        for type in self.mutedTypes.keys where type.isEmpty || type.utf8.count > 64 {
            return ("muted_types", "type names are 1-64 bytes")
        }
        if let quiet = self.quietHours {
            guard Self.minutes(quiet.start) != nil else { return ("quiet_hours.start", "must be HH:MM") }
            guard Self.minutes(quiet.end) != nil else { return ("quiet_hours.end", "must be HH:MM") }
            guard TimeZone(identifier: quiet.timeZone) != nil else {
                return ("quiet_hours.time_zone", "must be an IANA time zone such as Europe/Berlin")
            }
        }
        if let delay = self.pushDelayMs, !(0...maxDelayMs).contains(delay) {
            return ("push_delay_ms", "must be between 0 and \(maxDelayMs)")
        }
        return nil
    }

    /// Whether a push of `type` in `room` is muted at `now` (the worker checks again at send time: a mute set
    /// after scheduling drops the push).
    public func mutes(type: String, room: String?, at now: Date) -> Bool {
        func active(_ until: Date??) -> Bool {
            guard case .some(let until) = until else { return false }
            return until.map { $0 > now } ?? true
        }
        return active(room.flatMap { self.mutedRooms[$0] }) || active(self.mutedTypes[type])
    }

    /// When the quiet hours containing `now` end, or `nil` when `now` is outside them. The end is a wall-clock
    /// time in the user's zone; one that a daylight-saving jump skips ends at the jump.
    public func quietHoursEnd(after now: Date) -> Date? {
        guard let quiet = self.quietHours, let start = Self.minutes(quiet.start), let end = Self.minutes(quiet.end),
            start != end, let zone = TimeZone(identifier: quiet.timeZone)
        else { return nil }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        let parts = calendar.dateComponents([.hour, .minute], from: now)
        let minute = (parts.hour ?? 0) * 60 + (parts.minute ?? 0)
        let inside = start < end ? (minute >= start && minute < end) : (minute >= start || minute < end)
        guard inside else { return nil }
        return calendar.nextDate(
            after: now, matching: DateComponents(hour: end / 60, minute: end % 60), matchingPolicy: .nextTime)
    }
}
