import Foundation
import NIOCore
import NotifyCore

/// A request id as the client chose it; the reply echoes it verbatim.
public enum RequestID: Sendable, Hashable {
    case string(String)
    case integer(Int64)

    /// The id as JSON text.
    public var json: String {
        switch self {
        case .string(let text): JSONText.quoted(text)
        case .integer(let value): String(value)
        }
    }
}

/// A request that cannot be served: the error frame's code and message (see `docs/PLEXER_PROTOCOL.md`).
public struct PlexerFailure: Error, Sendable, Equatable {
    public var code: String
    public var message: String
    /// For `rate_limited`: when to try again.
    public var retryMs: Int?

    public init(_ code: String, _ message: String, retryMs: Int? = nil) {
        self.code = code
        self.message = message
        self.retryMs = retryMs
    }

    static func badFrame(_ message: String) -> Self { Self("bad_frame", message) }
    static func invalid(_ message: String) -> Self { Self("invalid", message) }
}

/// One message of a client: its channel, its id, and the channel's members, which the channel reads with the
/// typed accessors (each failing with a `bad_frame` that names the member).
public struct PlexerRequest: Sendable {
    public var channel: String
    public var id: RequestID?
    /// Every member but `ch` and `id`.
    public var members: [String: JSONValue]

    public static let maxIDBytes = 64
    static let maxChannelBytes = 64

    public init(channel: String, id: RequestID? = nil, members: [String: JSONValue] = [:]) {
        self.channel = channel
        self.id = id
        self.members = members
    }

    /// Parses a text message. A failure carries what could be read of the envelope, so its error frame can
    /// still echo the channel and id.
    public static func parse(_ text: ByteBuffer) -> Result<PlexerRequest, ParseFailure> {
        let value: JSONValue
        do {
            value = try JSONDecoder().decode(JSONValue.self, from: Data(text.readableBytesView))
        } catch {
            return .failure(ParseFailure(channel: nil, id: nil, failure: .badFrame("the message is not valid JSON")))
        }
        guard case .object(var members) = value else {
            return .failure(ParseFailure(channel: nil, id: nil, failure: .badFrame("the message is not a JSON object")))
        }
        var id: RequestID?
        switch members.removeValue(forKey: "id") {
        case nil, .null?: id = nil
        case .string(let text)? where (1...Self.maxIDBytes).contains(text.utf8.count): id = .string(text)
        case .integer(let value)?: id = .integer(value)
        default:
            let channel = members["ch"].flatMap { if case .string(let text) = $0 { text } else { nil } }
            return .failure(
                ParseFailure(
                    channel: channel, id: nil,
                    failure: .badFrame("id must be an integer or a string of 1 to \(Self.maxIDBytes) bytes")))
        }
        guard case .string(let channel)? = members.removeValue(forKey: "ch"),
            (1...Self.maxChannelBytes).contains(channel.utf8.count)
        else {
            return .failure(ParseFailure(channel: nil, id: id, failure: .badFrame("ch must name a channel")))
        }
        return .success(PlexerRequest(channel: channel, id: id, members: members))
    }

    /// What a message that failed to parse still says about itself.
    public struct ParseFailure: Error, Sendable {
        public var channel: String?
        public var id: RequestID?
        public var failure: PlexerFailure
    }

    // MARK: Members

    /// Fails when a member other than `allowed` is present (a typo must not be ignored silently).
    public func allowOnly(_ allowed: Set<String>) throws(PlexerFailure) {
        if let unknown = self.members.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw .badFrame("unknown member \(unknown)")
        }
    }

    /// The operation (`op`) of a channel with operations.
    public func operation() throws(PlexerFailure) -> String {
        guard let op = try self.string("op") else { throw .badFrame("op is required") }
        return op
    }

    public func string(_ name: String, maxBytes: Int = 4_096) throws(PlexerFailure) -> String? {
        switch self.members[name] {
        case nil, .null?: return nil
        case .string(let text)? where text.utf8.count <= maxBytes: return text
        case .string?: throw .invalid("\(name) must be at most \(maxBytes) bytes")
        default: throw .badFrame("\(name) must be a string")
        }
    }

    public func integer(_ name: String, in range: ClosedRange<Int>) throws(PlexerFailure) -> Int? {
        switch self.members[name] {
        case nil, .null?: return nil
        case .integer(let value)?:
            guard let value = Int(exactly: value), range.contains(value) else {
                throw .invalid("\(name) must be between \(range.lowerBound) and \(range.upperBound)")
            }
            return value
        default: throw .badFrame("\(name) must be an integer")
        }
    }

    public func strings(_ name: String, maxCount: Int) throws(PlexerFailure) -> [String]? {
        switch self.members[name] {
        case nil, .null?: return nil
        case .array(let values)?:
            guard (1...maxCount).contains(values.count) else {
                throw .invalid("\(name) must have 1 to \(maxCount) entries")
            }
            var strings: [String] = []
            for value in values {
                guard case .string(let text) = value else { throw .badFrame("\(name) must be an array of strings") }
                strings.append(text)
            }
            return strings
        default: throw .badFrame("\(name) must be an array of strings")
        }
    }

    /// An object of string values (headers).
    public func stringMap(_ name: String, maxCount: Int) throws(PlexerFailure) -> [String: String]? {
        switch self.members[name] {
        case nil, .null?: return nil
        case .object(let object)?:
            guard object.count <= maxCount else { throw .invalid("\(name) allows at most \(maxCount) entries") }
            var map: [String: String] = [:]
            for (key, value) in object {
                guard case .string(let text) = value else { throw .badFrame("\(name) values must be strings") }
                map[key] = text
            }
            return map
        default: throw .badFrame("\(name) must be an object")
        }
    }

    /// An event id member (`after`, `up_to`…).
    public func eventID(_ name: String) throws(PlexerFailure) -> StreamID? {
        guard let text = try self.string(name, maxBytes: 64) else { return nil }
        guard let id = StreamID(text) else { throw .invalid("\(name) must be an event id like 1700000000000-0") }
        return id
    }
}
