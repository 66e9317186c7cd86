import NIOCore

/// One argument of a Redis command. Binary safe: bytes are sent with an explicit length.
public enum RedisArgument: Sendable, Hashable {
    case string(String)
    case bytes(ByteBuffer)
    case integer(Int)
    case double(Double)
}

extension RedisArgument: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .integer(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
}

extension RedisArgument {
    /// Appends the argument's bytes to `storage`.
    @inlinable
    func append(to storage: inout [UInt8]) {
        switch self {
        case .string(let text):
            storage.append(contentsOf: text.utf8)
        case .bytes(let buffer):
            buffer.withUnsafeReadableBytes { storage.append(contentsOf: $0) }
        case .integer(let number):
            storage.append(contentsOf: String(number).utf8)
        case .double(let number):
            // Redis parses "inf"/"-inf" and plain decimals; Swift's description gives both forms.
            storage.append(contentsOf: Self.redisText(number).utf8)
        }
    }

    @usableFromInline
    static func redisText(_ number: Double) -> String {
        if number == .infinity { return "+inf" }
        if number == -.infinity { return "-inf" }
        if number.rounded() == number, abs(number) < 1e15 { return String(Int64(number)) }
        return "\(number)"
    }
}
