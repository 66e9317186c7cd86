import Foundation
import RedisClient

/// Users' preferences, stored in the shape the ingest script reads (`n:{s}:prefs:<user>` hash):
/// `mute:room:<room>` and `mute:type:<type>` -> until (ms, 0 = for ever), `quiet` -> `start end` (minutes),
/// `quiet_offsets` -> `fromMs:offsetMinutes,...`, `quiet_tz`, `delay` -> ms.
public struct PreferenceStore: Sendable {
    public let client: RedisClient
    public let keys: UserKeys
    /// The clock that decides from when the time zone's offsets are written (tests pin it to the queue's clock).
    let now: @Sendable () -> Date

    /// How far ahead the time zone's offsets are written; every save writes them again. Twenty years cover any
    /// due time (at most the queue's longest delay ahead) of a user who never saves again, in about 40 entries.
    static let offsetHorizon: TimeInterval = 20 * 366 * 86_400

    public init(client: RedisClient, keys: UserKeys, now: @escaping @Sendable () -> Date = { Date() }) {
        self.client = client
        self.keys = keys
        self.now = now
    }

    public func get(userID: String) async throws -> Preferences {
        Self.decode(try await self.client.send("HGETALL", .string(self.keys.preferences(userID))))
    }

    /// The preferences in an `HGETALL` reply of a preferences hash.
    public static func decode(_ reply: RedisValue) -> Preferences {
        let values = reply.array ?? []
        var fields: [String: String] = [:]
        var index = 0
        while index + 1 < values.count {
            if let name = values[index].string, let value = values[index + 1].string { fields[name] = value }
            index += 2
        }
        var preferences = Preferences()
        func until(_ text: String) -> Date? {
            guard let ms = Int64(text), ms > 0 else { return nil }
            return Date(timeIntervalSince1970: Double(ms) / 1000)
        }
        for (name, value) in fields {
            if name.hasPrefix("mute:room:") {
                preferences.mutedRooms[String(name.dropFirst(10))] = .some(until(value))
            } else if name.hasPrefix("mute:type:") {
                preferences.mutedTypes[String(name.dropFirst(10))] = .some(until(value))
            }
        }
        if let quiet = fields["quiet"], let zone = fields["quiet_tz"] {
            let parts = quiet.split(separator: " ").compactMap { Int($0) }
            if parts.count == 2 {
                let text = { (minutes: Int) in String(format: "%02d:%02d", minutes / 60, minutes % 60) }
                preferences.quietHours = Preferences.QuietHours(
                    start: text(parts[0]), end: text(parts[1]), timeZone: zone)
            }
        }
        preferences.pushDelayMs = fields["delay"].flatMap { Int($0) }
        return preferences
    }

    /// Replaces the user's preferences (one MULTI/EXEC, so the ingest never sees half of them).
    public func put(userID: String, _ preferences: Preferences) async throws {
        let now = self.now()
        let key = RedisArgument.string(self.keys.preferences(userID))
        var fields: [RedisArgument] = []
        func until(_ date: Date?) -> RedisArgument {
            .string(date.map { String(Int64($0.timeIntervalSince1970 * 1000)) } ?? "0")
        }
        for (room, date) in preferences.mutedRooms { fields += [.string("mute:room:\(room)"), until(date)] }
        for (type, date) in preferences.mutedTypes { fields += [.string("mute:type:\(type)"), until(date)] }
        if let quiet = preferences.quietHours, let start = Preferences.minutes(quiet.start),
            let end = Preferences.minutes(quiet.end), let zone = TimeZone(identifier: quiet.timeZone)
        {
            fields += [
                "quiet", .string("\(start) \(end)"), "quiet_tz", .string(quiet.timeZone),
                "quiet_offsets", .string(Self.offsets(of: zone, from: now)),
            ]
        }
        if let delay = preferences.pushDelayMs { fields += ["delay", .integer(delay)] }
        var commands = [RedisCommand("MULTI"), RedisCommand("DEL", key)]
        if !fields.isEmpty { commands.append(RedisCommand("HSET", [key] + fields)) }
        commands.append(RedisCommand("EXEC"))
        for reply in try await self.client.send(batch: commands) {
            _ = try reply.throwingIfError()
        }
    }

    /// The zone's UTC offsets from a day before `now` to the horizon: `fromMs:offsetMinutes`, one per
    /// daylight-saving change, so the ingest script needs no time zone database.
    static func offsets(of zone: TimeZone, from now: Date) -> String {
        var moment = now.addingTimeInterval(-86_400)
        let end = now.addingTimeInterval(Self.offsetHorizon)
        var entries = ["0:\(zone.secondsFromGMT(for: moment) / 60)"]
        while let next = zone.nextDaylightSavingTimeTransition(after: moment), next < end {
            entries.append("\(Int64(next.timeIntervalSince1970 * 1000)):\(zone.secondsFromGMT(for: next) / 60)")
            moment = next
        }
        return entries.joined(separator: ",")
    }
}
