import Configuration
import Foundation
import NotifyCore

/// A channel that forwards to a backend service (`plexer.routes`, then `plexer.route.<channel>.*`).
public struct UpstreamRoute: Sendable {
    public enum Kind: String, Sendable {
        /// Each request frame becomes one HTTP request.
        case http
        /// Frames are relayed over a per-client upstream WebSocket.
        case websocket
    }

    /// How the upstream learns who asks.
    public enum Identity: String, Sendable {
        /// `X-Notify-User`, `X-Notify-Timestamp` and `X-Notify-Signature` (HMAC-SHA256 with `secret`).
        case signed
        /// The client's own JWT as `Authorization: Bearer`.
        case jwt
    }

    public var channel: String
    public var kind: Kind
    /// The upstream's base URL (`http`/`https`, or `ws`/`wss` for a WebSocket route); request paths are appended.
    public var url: URL
    /// Request paths must start with one of these (`/` allows every path).
    public var allowedPrefixes: [String]
    /// Request headers the client may set (lower case); identity-like headers are dropped whatever this says.
    public var allowedHeaders: Set<String>
    /// Response headers passed back to the client (lower case).
    public var responseHeaders: Set<String>
    public var timeoutMs: Int
    /// Requests to this upstream at once from this process.
    public var maxInFlight: Int
    public var maxResponseBytes: Int
    public var identity: Identity
    /// The HMAC key of `signed` identity headers.
    public var secret: String?

    public init(
        channel: String, kind: Kind = .http, url: URL, allowedPrefixes: [String] = ["/"],
        allowedHeaders: Set<String> = ["accept", "accept-language", "if-none-match", "if-match"],
        responseHeaders: Set<String> = ["content-type", "etag", "location", "retry-after", "cache-control"],
        timeoutMs: Int = 10_000, maxInFlight: Int = 256, maxResponseBytes: Int = 1 << 20,
        identity: Identity = .signed, secret: String? = nil
    ) {
        self.channel = channel
        self.kind = kind
        self.url = url
        self.allowedPrefixes = allowedPrefixes
        self.allowedHeaders = allowedHeaders
        self.responseHeaders = responseHeaders
        self.timeoutMs = timeoutMs
        self.maxInFlight = maxInFlight
        self.maxResponseBytes = maxResponseBytes
        self.identity = identity
        self.secret = secret
    }

    /// Channel names the Plexer serves itself.
    static let reserved: Set<String> = ["auth", "notify", "sys"]

    /// Reads every route named in `plexer.routes` (`config` scoped to `plexer`).
    public static func routes(config: ConfigReader) throws(NotifyConfigError) -> [UpstreamRoute] {
        try config.stringArray(forKey: "routes", default: []).map { (name) throws(NotifyConfigError) in
            try UpstreamRoute(name: name, config: config.scoped(to: ConfigKey(["route", name])))
        }
    }

    init(name: String, config: ConfigReader) throws(NotifyConfigError) {
        guard !Self.reserved.contains(name),
            name.range(of: #"^[a-z][a-z0-9_.-]{0,63}$"#, options: .regularExpression) != nil
        else {
            throw NotifyConfigError(
                "plexer.routes: \(name) is not a channel name (a-z, 0-9, _ . -; not auth, notify or sys)")
        }
        let text = config.string(forKey: "url", isSecret: true) ?? ""
        guard let url = URL(string: text), let scheme = url.scheme, url.host != nil else {
            throw NotifyConfigError("plexer.route.\(name).url must be an absolute URL")
        }
        guard let kind = Kind(rawValue: config.string(forKey: "kind", default: "http")) else {
            throw NotifyConfigError("plexer.route.\(name).kind must be http or websocket")
        }
        let schemes: Set<String> = kind == .http ? ["http", "https"] : ["ws", "wss"]
        guard schemes.contains(scheme) else {
            throw NotifyConfigError("plexer.route.\(name).url must be \(schemes.sorted().joined(separator: " or "))")
        }
        if kind == .http, url.query != nil || url.fragment != nil {
            throw NotifyConfigError("plexer.route.\(name).url must not have a query or fragment (paths are appended)")
        }
        // A WebSocket route's limits are per message and per socket: a message the size of a client's at most
        // (so relaying one never fills the client's socket), and a socket for each of many clients.
        let d =
            kind == .http
            ? UpstreamRoute(channel: name, url: url)
            : UpstreamRoute(channel: name, kind: kind, url: url, maxInFlight: 10_000, maxResponseBytes: 65_536)
        let identityText = config.string(forKey: "identity", default: d.identity.rawValue)
        guard let identity = Identity(rawValue: identityText) else {
            throw NotifyConfigError("plexer.route.\(name).identity must be signed or jwt")
        }
        if identity == .jwt, scheme == "http" || scheme == "ws",
            !["127.0.0.1", "localhost", "::1"].contains(url.host ?? "")
        {
            throw NotifyConfigError(
                "plexer.route.\(name): identity jwt forwards users' tokens; use https or wss (plain only to this host)")
        }
        let secret = config.string(forKey: "secret", isSecret: true)
        if identity == .signed, (secret?.utf8.count ?? 0) < 32 {
            throw NotifyConfigError("plexer.route.\(name).secret must have at least 32 bytes for signed identity")
        }
        let prefixes = config.stringArray(forKey: "allowedPrefixes", default: d.allowedPrefixes)
        guard prefixes.allSatisfy({ $0.hasPrefix("/") }) else {
            throw NotifyConfigError("plexer.route.\(name).allowedPrefixes must start with /")
        }
        self.init(
            channel: name, kind: kind, url: url, allowedPrefixes: prefixes,
            allowedHeaders: Set(
                config.stringArray(forKey: "allowedHeaders", default: Array(d.allowedHeaders)).map { $0.lowercased() }),
            responseHeaders: Set(
                config.stringArray(forKey: "responseHeaders", default: Array(d.responseHeaders)).map {
                    $0.lowercased()
                }),
            timeoutMs: config.int(forKey: "timeoutMs", default: d.timeoutMs),
            maxInFlight: config.int(forKey: "maxInFlight", default: d.maxInFlight),
            maxResponseBytes: config.int(forKey: "maxResponseBytes", default: d.maxResponseBytes),
            identity: identity, secret: secret)
        for (key, value) in [
            ("timeoutMs", self.timeoutMs), ("maxInFlight", self.maxInFlight),
            ("maxResponseBytes", self.maxResponseBytes),
        ] where value <= 0 {
            throw NotifyConfigError("plexer.route.\(name).\(key) must be positive, got \(value)")
        }
        guard self.maxResponseBytes <= 64 << 20 else {
            throw NotifyConfigError("plexer.route.\(name).maxResponseBytes must be at most 64 MiB")
        }
    }

    /// `scheme://host[:port]` of the URL, where requests go.
    var origin: String {
        var components = URLComponents(url: self.url, resolvingAgainstBaseURL: false) ?? URLComponents()
        components.percentEncodedPath = ""
        components.percentEncodedQuery = nil
        components.fragment = nil
        return components.string ?? ""
    }

    /// The URL's path as written (percent-encoded, without trailing `/`): an HTTP route's requests go below it.
    var basePath: String {
        var path = self.url.path(percentEncoded: true)
        while path.hasSuffix("/") { path.removeLast() }
        return path
    }

    /// A WebSocket route's handshake target: the URL's path as written (`/` when empty) and its query.
    var handshakeTarget: String {
        let path = self.url.path(percentEncoded: true)
        let query = self.url.query(percentEncoded: true).map { "?" + $0 } ?? ""
        return (path.isEmpty ? "/" : path) + query
    }

    /// Whether `path` (already checked to be clean) lies under an allowed prefix: the prefix itself, or below it.
    func allows(path: String) -> Bool {
        self.allowedPrefixes.contains { prefix in
            prefix == "/" || path == prefix || path.hasPrefix(prefix.hasSuffix("/") ? prefix : prefix + "/")
        }
    }
}
