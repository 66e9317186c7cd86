import Crypto
import Foundation
import NIOCore
import NotifyCore

/// One request frame of an HTTP channel, checked and turned into the request the upstream gets: a clean path under
/// the route's prefixes, the allowed client headers without anything that looks like identity, a JSON body, and
/// the identity headers the Plexer sets itself.
struct UpstreamRequest: Equatable {
    var method: String
    /// The request target as the upstream receives it: the route URL's path, then the client's path and query.
    var target: String
    var headers: [(name: String, value: String)]
    var body: ByteBuffer?

    static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.method == rhs.method && lhs.target == rhs.target && lhs.body == rhs.body
            && lhs.headers.map { "\($0.name): \($0.value)" } == rhs.headers.map { "\($0.name): \($0.value)" }
    }

    static let methods: Set<String> = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    static let members: Set<String> = ["method", "path", "query", "headers", "body"]

    /// Headers a client must never set, whatever the route allows: they could claim an identity or a hop, or change
    /// how the request is framed.
    static func isForbidden(_ name: String) -> Bool {
        let name = name.lowercased()
        let exact: Set<String> = [
            "authorization", "cookie", "forwarded", "x-real-ip", "host", "connection", "keep-alive", "te", "trailer",
            "transfer-encoding", "upgrade", "content-length", "content-type", "expect", "via",
        ]
        return exact.contains(name)
            || ["x-notify-", "x-forwarded-", "x-user", "x-auth", "x-remote-", "proxy-"].contains { name.hasPrefix($0) }
    }

    /// RFC 3986 `unreserved` and `sub-delims` plus `:` `@`: what a path segment or a query may hold unencoded.
    static func isURLCharacter(_ scalar: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar)
            || "-._~!$&'()*+,;=:@".unicodeScalars.contains(scalar)
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
        var target = route.basePath + path
        if let query = try request.string("query", maxBytes: 4_096), !query.isEmpty {
            guard query.unicodeScalars.allSatisfy({ Self.isURLCharacter($0) || "/?%".unicodeScalars.contains($0) }),
                Self.decodePercent(query, refusing: []) != nil
            else { throw .invalid("query must be URL-encoded (RFC 3986), without #") }
            target += "?" + query
        }
        var headers: [(String, String)] = []
        for (name, value) in (try request.stringMap("headers", maxCount: 32) ?? [:]).sorted(by: { $0.key < $1.key }) {
            let lower = name.lowercased()
            guard !lower.isEmpty,
                lower.unicodeScalars.allSatisfy({ ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" }),
                value.utf8.count <= 4_096,
                !value.unicodeScalars.contains(where: { ($0.value < 0x20 && $0 != "\t") || $0.value == 0x7f })
            else { throw .invalid("header \(name) is not a valid header") }
            // Dropped, not refused: a client library may add some of these on its own.
            guard route.allowedHeaders.contains(lower), !Self.isForbidden(lower) else { continue }
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

    /// The decoded path if it is clean: absolute, only URL characters or percent-encodings (RFC 3986), no encoded
    /// separator (`/`, `\\`, `.`, `%`, `;`: the upstream might read them differently than the prefix check did), no
    /// empty, `.` or `..` segment, valid UTF-8.
    static func cleanPath(_ path: String) throws(PlexerFailure) -> String {
        guard path.hasPrefix("/"),
            path.unicodeScalars.allSatisfy({ (Self.isURLCharacter($0) && $0 != ";") || $0 == "/" || $0 == "%" })
        else { throw .invalid("path must be an absolute, URL-encoded path without query") }
        guard let decoded = Self.decodePercent(path, refusing: [0x2F, 0x5C, 0x2E, 0x25, 0x3B]) else {
            throw PlexerFailure("forbidden", "path \(path) encodes a separator or is not valid UTF-8")
        }
        let segments = decoded.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        guard !segments.contains(where: { $0 == "." || $0 == ".." }),
            !segments.dropLast().contains(where: \.isEmpty)
        else { throw PlexerFailure("forbidden", "path \(path) is not a clean path (no ., .. or // segments)") }
        return decoded
    }

    /// `text` with its `%XX` decoded, or `nil` when an escape is malformed, decodes to a control character or to
    /// one of `refusing`, or the result is not UTF-8.
    static func decodePercent(_ text: String, refusing: Set<UInt8>) -> String? {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next(), let low = iterator.next(),
                let decoded = Hex.decode(String(decoding: [high, low], as: UTF8.self))?.first
            else { return nil }
            guard decoded >= 0x20, decoded != 0x7F, !refusing.contains(decoded) else { return nil }
            bytes.append(decoded)
        }
        return String(validating: bytes, as: UTF8.self)
    }
}

/// The signature of `signed` identity headers. An upstream recomputes it with the shared secret and accepts the
/// request when it matches (compared in constant time, ``verify(_:secret:user:timestamp:method:target:body:)``)
/// and the timestamp is recent:
/// `X-Notify-Signature: v1=<hex HMAC-SHA256(secret, "v1\n<timestamp>\n<user>\n<METHOD>\n<path?query>\n<hex SHA-256
/// of the body, empty body included>")>`. No field can hold a line feed, so the message is unambiguous.
public enum IdentitySignature {
    public static func sign(
        secret: String, user: String, timestamp: String, method: String, target: String, body: ByteBuffer?
    ) -> String {
        let mac = HMAC<SHA256>.authenticationCode(
            for: Self.message(user: user, timestamp: timestamp, method: method, target: target, body: body),
            using: SymmetricKey(data: Array(secret.utf8)))
        return "v1=" + Hex.encode(Array(mac))
    }

    /// Whether `signature` (the header's value) signs this request, compared in constant time.
    public static func verify(
        _ signature: String, secret: String, user: String, timestamp: String, method: String, target: String,
        body: ByteBuffer?
    ) -> Bool {
        guard signature.hasPrefix("v1="), let mac = Hex.decode(String(signature.dropFirst(3))) else { return false }
        return HMAC<SHA256>.isValidAuthenticationCode(
            mac,
            authenticating: Self.message(user: user, timestamp: timestamp, method: method, target: target, body: body),
            using: SymmetricKey(data: Array(secret.utf8)))
    }

    private static func message(user: String, timestamp: String, method: String, target: String, body: ByteBuffer?)
        -> [UInt8]
    {
        let bodyHash = Hex.encode(SHA256.hash(data: Array((body ?? ByteBuffer()).readableBytesView)))
        return Array("v1\n\(timestamp)\n\(user)\n\(method)\n\(target)\n\(bodyHash)".utf8)
    }
}
