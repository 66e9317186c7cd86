import Crypto

/// A Lua script, called by its SHA1 (EVALSHA) and loaded again on `NOSCRIPT` (e.g. after a Redis restart).
public struct RedisScript: Sendable, Hashable {
    /// The Lua source.
    public let source: String
    /// Lowercase hex SHA1 of the source, as Redis names the script.
    public let sha1: String

    public init(_ source: String) {
        self.source = source
        self.sha1 = Insecure.SHA1.hash(data: Array(source.utf8)).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }

    /// The EVALSHA command for one call.
    func evalSHA(keys: [RedisArgument], arguments: [RedisArgument]) -> RedisCommand {
        RedisCommand("EVALSHA", [.string(self.sha1), .integer(keys.count)] + keys + arguments)
    }

    /// The EVAL command for one call; Redis caches the script as a side effect.
    func eval(keys: [RedisArgument], arguments: [RedisArgument]) -> RedisCommand {
        RedisCommand("EVAL", [.string(self.source), .integer(keys.count)] + keys + arguments)
    }
}

/// One call of a script: its keys and arguments.
public struct RedisScriptCall: Sendable {
    public var keys: [RedisArgument]
    public var arguments: [RedisArgument]

    public init(keys: [RedisArgument], arguments: [RedisArgument]) {
        self.keys = keys
        self.arguments = arguments
    }
}
