import Foundation

/// Where and as whom to connect: `redis://[user:password@]host:port[/db]`.
///
/// `rediss://` (TLS) is refused with a clear error until the client supports TLS.
public struct RedisURL: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int
    /// ACL user name; `nil` means the `default` user.
    public var user: String?
    /// Password for AUTH; never printed.
    public var password: String?
    /// Logical database selected after connecting.
    public var database: Int

    public init(
        host: String = "127.0.0.1", port: Int = 6379, user: String? = nil, password: String? = nil,
        database: Int = 0
    ) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
    }

    /// Parses a `redis://` URL.
    public init(_ text: String) throws(RedisClientError) {
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased() else {
            throw RedisClientError(.invalidURL, "not a URL; expected redis://[user:password@]host:port[/db]")
        }
        switch scheme {
        case "redis":
            break
        case "rediss":
            throw RedisClientError(
                .invalidURL, "rediss:// (TLS) is not supported yet; use redis:// on a trusted network")
        default:
            throw RedisClientError(.invalidURL, "unsupported scheme '\(scheme)'; expected redis://")
        }
        guard let host = components.host, !host.isEmpty else {
            throw RedisClientError(.invalidURL, "missing host; expected redis://host:port")
        }
        let port = components.port ?? 6379
        guard (1...65535).contains(port) else {
            throw RedisClientError(.invalidURL, "port \(port) is out of range")
        }
        var database = 0
        let path = components.path.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        if !path.isEmpty {
            guard let number = Int(path), number >= 0 else {
                throw RedisClientError(.invalidURL, "database '\(path)' is not a non-negative number")
            }
            database = number
        }
        let user = components.user.flatMap { $0.isEmpty ? nil : $0 }
        let password = components.password.flatMap { $0.isEmpty ? nil : $0 }
        // "redis://:secret@host" is the classic requirepass form: a password without a user.
        self.init(host: host, port: port, user: user, password: password, database: database)
    }

    /// The URL with the password masked, for logs.
    public var description: String {
        var auth = ""
        if let user { auth = user }
        if password != nil { auth += ":***" }
        if !auth.isEmpty { auth += "@" }
        return "redis://\(auth)\(host):\(port)/\(database)"
    }
}
