import NIOCore

/// A Redis command, encoded once at construction into its RESP bytes.
public struct RedisCommand: Sendable {
    /// The command name, for logs and metrics (never the arguments: they may hold user data).
    public let name: String
    /// The RESP encoding of the whole command.
    public let encoded: ByteBuffer

    /// Encodes `name` and `arguments` with hiredis.
    public init(_ name: String, _ arguments: [RedisArgument]) {
        self.name = name
        self.encoded = RedisCommandEncoder.encode(name: name, arguments: arguments)
    }

    /// Encodes `name` and `arguments` with hiredis.
    public init(_ name: String, _ arguments: RedisArgument...) {
        self.init(name, arguments)
    }
}
