import NIOCore

/// A reply from Redis (RESP2), as decoded by hiredis.
///
/// A nil bulk string and a nil array both arrive as ``null`` (hiredis 0.14 does not tell them apart).
public enum RedisValue: Sendable, Hashable {
    case simpleString(String)
    case bulkString(ByteBuffer)
    case integer(Int64)
    case array([RedisValue])
    case error(String)
    case null
}

// MARK: - Decoding helpers

extension RedisValue {
    /// Whether this is ``null``.
    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// The error text when this is an error reply.
    public var errorMessage: String? {
        if case .error(let message) = self { return message }
        return nil
    }

    /// The value as a string: simple and bulk strings (UTF-8) and integers; `nil` otherwise.
    public var string: String? {
        switch self {
        case .simpleString(let text): text
        case .bulkString(let buffer): String(buffer: buffer)
        case .integer(let number): String(number)
        default: nil
        }
    }

    /// The value as bytes: bulk and simple strings; `nil` otherwise.
    public var bytes: ByteBuffer? {
        switch self {
        case .bulkString(let buffer): buffer
        case .simpleString(let text): ByteBuffer(string: text)
        default: nil
        }
    }

    /// The value as an integer: integers and strings holding a decimal integer.
    public var int: Int? {
        switch self {
        case .integer(let number): Int(exactly: number)
        case .bulkString, .simpleString: self.string.flatMap { Int($0) }
        default: nil
        }
    }

    /// The value as a double: integers and strings holding a number (Redis sends scores as strings).
    public var double: Double? {
        switch self {
        case .integer(let number): Double(number)
        case .bulkString, .simpleString: self.string.flatMap { Double($0) }
        default: nil
        }
    }

    /// The elements when this is an array; `nil` otherwise (including ``null``).
    public var array: [RedisValue]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    /// Throws ``RedisClientError/Code-swift.enum/errorReply`` if this is an error reply; returns `self` otherwise.
    @discardableResult
    public func throwingIfError() throws -> RedisValue {
        if case .error(let message) = self {
            throw RedisClientError(.errorReply, message)
        }
        return self
    }

    /// Decodes the value with a helper, throwing ``RedisClientError/Code-swift.enum/unexpectedReply`` if it does
    /// not fit.
    public func decode<T>(_ transform: (RedisValue) -> T?, as type: T.Type = T.self) throws -> T {
        try self.throwingIfError()
        guard let value = transform(self) else {
            throw RedisClientError(.unexpectedReply, "expected \(T.self), got \(self.kindDescription)")
        }
        return value
    }

    /// A short name of the reply kind, safe for error messages (never the content).
    public var kindDescription: String {
        switch self {
        case .simpleString: "simple string"
        case .bulkString(let buffer): "bulk string (\(buffer.readableBytes) bytes)"
        case .integer: "integer"
        case .array(let elements): "array (\(elements.count) elements)"
        case .error: "error"
        case .null: "null"
        }
    }
}
