import Crypto
import Foundation
import NIOCore
import NotifyCore

/// One request frame of an HTTP channel, checked and turned into the request the upstream gets: a clean path under
/// the route's prefixes, the allowed client headers without anything that looks like identity, a JSON body, and
/// the identity headers the Plexer sets itself.
struct UpstreamRequest: Equatable {
    var method: String
    /// The path and query appended to the route's base URL.
    var target: String
    var headers: [(name: String, value: String)]
    var body: ByteBuffer?

    static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.method == rhs.method && lhs.target == rhs.target && lhs.body == rhs.body
            && lhs.headers.map { "\($0.name): \($0.value)" } == rhs.headers.map { "\($0.name): \($0.value)" }
    }

    static let methods: Set<String> = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    static let members: Set<String> = ["method", "path", "query", "headers", "body"]

    /// Headers a client must never set, whatever the route allows: they could claim an identity or a hop.
    static func isIdentityLike(_ name: String) -> Bool {
        let name = name.lowercased()
        return ["authorization", "cookie", "forwarded", "x-real-ip", "x-remote-user", "x-user", "x-auth", "host"]
            .contains(name) || name.hasPrefix("x-notify-") || name.hasPrefix("x-forwarded-")
            || name.hasPrefix("x-user-") || name.hasPrefix("x-auth-") || name.hasPrefix("proxy-")
    }

    /// Builds the request; `token` is the socket's JWT (forwarded with `jwt` identity), `now` the signature's time.
    init(
        _ request: PlexerRequest, route: UpstreamRoute, user: String, token: String?, now: Date = Date()
    ) throws(PlexerFailure) {
        try request.allowOnly(Self.members)
        let method = (try request.string("method", maxBytes: 8) ?? "GET").uppercased()
        guard Self.methods.contains(method) else {
            throw .invalid("method must be one of \(Self.methods.sorted().joined(separator: ", "))")
        }
        guard let path = try request.string("path", maxBytes: 2_048) else { throw .badFrame("path is required") }
        let clean = try Self.cleanPath(path)
        guard route.allows(path: clean) else {
            throw PlexerFailure("forbidden", "path \(path) is outside what channel \(route.channel) allows")
        }
        var target = path
        if let query = try request.string("query", maxBytes: 4_096), !query.isEmpty {
            guard query.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7f && $0 != "#" }) else {
                throw .invalid("query must be URL-encoded, without spaces or #")
            }
            target += "?" + query
        }
        var headers: [(String, String)] = []
        for (name, value) in (try request.stringMap("headers", maxCount: 32) ?? [:]).sorted(by: { $0.key < $1.key }) {
            let lower = name.lowercased()
            guard !lower.isEmpty,
                lower.unicodeScalars.allSatisfy({ ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" }),
                value.utf8.count <= 4_096, !value.contains("\r"), !value.contains("\n")
            else { throw .invalid("header \(name) is not a valid header") }
            // Dropped, not refused: a client library may add some of these on its own.
            guard route.allowedHeaders.contains(lower), !Self.isIdentityLike(lower) else { continue }
            headers.append((lower, value))
        }
        var body: ByteBuffer?
        if let value = request.members["body"] {
            do {
                body = ByteBuffer(string: try JSONText.encode(value))
            } catch {
                throw .invalid("body could not be encoded as JSON")
            }
            headers.append(("content-type", "application/json"))
        }
        switch route.identity {
        case .jwt:
            guard let token else { throw PlexerFailure("internal", "the socket's token is not kept") }
            headers.append(("authorization", "Bearer \(token)"))
        case .signed:
            let timestamp = String(Int64(now.timeIntervalSince1970))
            headers.append(("x-notify-user", user))
            headers.append(("x-notify-timestamp", timestamp))
            headers.append(
                (
                    "x-notify-signature",
                    IdentitySignature.sign(
                        secret: route.secret ?? "", user: user, timestamp: timestamp, method: method, target: target,
                        body: body)
                ))
        }
        self.method = method
        self.target = target
        self.headers = headers
        self.body = body
    }

    /// The decoded path if it is clean: absolute, no empty, `.` or `..` segment (also percent-encoded), no
    /// backslash, no control character.
    static func cleanPath(_ path: String) throws(PlexerFailure) -> String {
        guard path.hasPrefix("/"), !path.contains("?"), !path.contains("#"),
            path.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7f }),
            let decoded = path.removingPercentEncoding,
            !decoded.contains("\\"), !decoded.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f })
        else { throw .invalid("path must be an absolute, URL-encoded path without query") }
        let segments = decoded.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        guard !segments.contains(where: { $0 == "." || $0 == ".." }),
            !segments.dropLast().contains(where: \.isEmpty)
        else { throw PlexerFailure("forbidden", "path \(path) is not a clean path (no ., .. or // segments)") }
        return decoded
    }
}

/// The signature of `signed` identity headers. An upstream recomputes it with the shared secret and accepts the
/// request when it matches (compared in constant time) and the timestamp is recent:
/// `X-Notify-Signature: v1=<hex HMAC-SHA256(secret, "v1:<timestamp>:<user>:<method>:<path?query>:<hex SHA-256 of
/// the body, empty body included>")>`.
public enum IdentitySignature {
    public static func sign(
        secret: String, user: String, timestamp: String, method: String, target: String, body: ByteBuffer?
    ) -> String {
        let bodyHash = Hex.encode(SHA256.hash(data: Array((body ?? ByteBuffer()).readableBytesView)))
        let message = "v1:\(timestamp):\(user):\(method):\(target):\(bodyHash)"
        let mac = HMAC<SHA256>.authenticationCode(
            for: Array(message.utf8), using: SymmetricKey(data: Array(secret.utf8)))
        return "v1=" + Hex.encode(Array(mac))
    }
}
