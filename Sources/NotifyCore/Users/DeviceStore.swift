import Foundation
import RedisClient

/// Users' devices: one hash per user (device id -> device JSON) on the user's shard, so the push worker reads
/// them with the user's other data.
public struct DeviceStore: Sendable {
    public let client: RedisClient
    public let keys: UserKeys
    /// Most devices per user: a bound on what one push fans out to.
    public let maxDevices: Int

    public init(client: RedisClient, keys: UserKeys, maxDevices: Int = 20) {
        self.client = client
        self.keys = keys
        self.maxDevices = maxDevices
    }

    /// Device ids are 1-128 characters of `A-Z a-z 0-9 . _ -`.
    public static func isValidID(_ id: String) -> Bool {
        (1...128).contains(id.utf8.count)
            && id.utf8.allSatisfy { byte in
                (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                    || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                    || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                    || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
            }
    }

    public enum PutOutcome: Sendable, Hashable {
        case created
        case updated
        case limitReached
    }

    /// Registers or replaces a device. Checking the count and writing are one script, so two concurrent
    /// registrations cannot pass the limit together.
    ///
    /// - Parameter secretIfNew: for a webhook registered without a secret: the secret to store unless the device
    ///   is a webhook with one already, which it keeps (decided in the same script, so a concurrent rotation or
    ///   first registration cannot be undone by a stale read).
    /// - Returns: the outcome, and the secret stored when it is `secretIfNew` (to show once).
    public func put(userID: String, deviceID: String, device: Device, secretIfNew: String? = nil) async throws
        -> (outcome: PutOutcome, newSecret: String?)
    {
        let json = String(decoding: try JSONEncoder().encode(device), as: UTF8.self)
        let reply = try await self.client.eval(
            Self.putScript, keys: [.string(self.keys.devices(userID))],
            arguments: [.string(deviceID), .string(json), .integer(self.maxDevices), .string(secretIfNew ?? "")])
        let values = reply.array ?? []
        let outcome: PutOutcome =
            switch values.first?.int {
            case 1: .created
            case 0: .updated
            default: .limitReached
            }
        let fresh = values.count > 1 && values[1].int == 1
        return (outcome, fresh ? secretIfNew : nil)
    }

    /// Removes a device; `false` when the user had no such device.
    public func delete(userID: String, deviceID: String) async throws -> Bool {
        try await self.client.send("HDEL", .string(self.keys.devices(userID)), .string(deviceID)).int == 1
    }

    /// Every device of the user, by id.
    public func list(userID: String) async throws -> [String: Device] {
        let entries = Self.entries(from: try await self.client.send("HGETALL", .string(self.keys.devices(userID))))
        return Dictionary(entries.map { ($0.id, $0.device) }, uniquingKeysWith: { first, _ in first })
    }

    /// One device, or `nil`.
    public func get(userID: String, deviceID: String) async throws -> Device? {
        let reply = try await self.client.send("HGET", .string(self.keys.devices(userID)), .string(deviceID))
        return reply.string.flatMap { Self.decode($0) }
    }

    /// A device as stored, with the JSON it was stored as (so a removal can check it was not replaced since).
    public struct Entry: Sendable, Hashable {
        public var id: String
        public var device: Device
        public var json: String
    }

    /// The devices in an `HGETALL` reply of a devices hash; unreadable entries are skipped.
    public static func entries(from reply: RedisValue) -> [Entry] {
        let fields = reply.array ?? []
        var entries: [Entry] = []
        var index = 0
        while index + 1 < fields.count {
            if let id = fields[index].string, let json = fields[index + 1].string, let device = Self.decode(json) {
                entries.append(Entry(id: id, device: device, json: json))
            }
            index += 2
        }
        return entries
    }

    /// Removes a device the gateway declared gone, unless it was registered again since (its JSON changed):
    /// `true` when removed.
    public func remove(userID: String, _ entry: Entry) async throws -> Bool {
        let reply = try await self.client.eval(
            Self.removeScript, keys: [.string(self.keys.devices(userID))],
            arguments: [.string(entry.id), .string(entry.json)])
        return reply.int == 1
    }

    private static func decode(_ json: String) -> Device? {
        do {
            let decoder = JSONDecoder()
            decoder.userInfo[Device.storedKey] = true
            return try decoder.decode(Device.self, from: Data(json.utf8))
        } catch {
            return nil  // written by an older or newer version in a shape this one cannot read: skipped
        }
    }

    static let removeScript = RedisScript(
        """
        if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
            return redis.call('HDEL', KEYS[1], ARGV[1])
        end
        return 0
        """)

    /// Returns {1 = created, 0 = replaced, -1 = the user is at the limit; 1 when ARGV[4] became the secret}.
    static let putScript = RedisScript(
        """
        local json, fresh = ARGV[2], 0
        local old = redis.call('HGET', KEYS[1], ARGV[1])
        if ARGV[4] ~= '' then
            local kept = nil
            if old then
                local ok, decoded = pcall(cjson.decode, old)
                if ok and type(decoded) == 'table' and decoded.platform == 'webhook'
                    and type(decoded.secret) == 'string' then kept = decoded.secret end
            end
            local device = cjson.decode(json)
            if kept then device.secret = kept else device.secret = ARGV[4]; fresh = 1 end
            json = cjson.encode(device)
        end
        if old then
            redis.call('HSET', KEYS[1], ARGV[1], json)
            return {0, fresh}
        end
        if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then return {-1, 0} end
        redis.call('HSET', KEYS[1], ARGV[1], json)
        return {1, fresh}
        """)
}
