/// An error of the Redis client. The ``code`` tells apart a Redis error reply, a connection failure, a timeout and a
/// protocol error; its raw value is safe as a metric label.
public struct RedisClientError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong.
    public enum Code: String, Sendable, Hashable {
        /// Redis answered with an error reply (the message is Redis' text, e.g. `WRONGTYPE ...`).
        case errorReply
        /// The TCP connection or the handshake (AUTH, SELECT) failed.
        case connectionFailed
        /// The connection closed while the command was in flight; the command may or may not have run.
        case connectionClosed
        /// Connecting took longer than the connect timeout.
        case connectTimeout
        /// No reply within the command timeout. The connection is closed, since later replies can no longer be
        /// matched to their commands; the command may or may not have run.
        case commandTimeout
        /// Every pooled connection stayed at its in-flight limit for longer than the acquire timeout.
        case poolExhausted
        /// Redis has not read what was already sent, and the connection's outbox is at its byte limit; the command
        /// was not sent.
        case outboxFull
        /// The reply stream could not be parsed.
        case protocolError
        /// A reply did not have the shape the caller asked for.
        case unexpectedReply
        /// The Redis URL could not be used.
        case invalidURL
        /// The client or subscriber has been shut down.
        case shutdown
    }

    /// What went wrong.
    public let code: Code
    /// Details for humans. Never holds command arguments or values.
    public let message: String

    /// Creates an error.
    public init(_ code: Code, _ message: String = "") {
        self.code = code
        self.message = message
    }

    /// The command never left: its connection had closed. Safe to send again on another connection, which the
    /// pool does by itself.
    static let notSent = RedisClientError(.connectionClosed, "connection closed before the command was sent")

    /// Whether this is an error reply whose text starts with `prefix` (e.g. `NOSCRIPT`, `WRONGTYPE`).
    public func isErrorReply(_ prefix: String) -> Bool {
        self.code == .errorReply && self.message.hasPrefix(prefix)
    }

    public var description: String {
        self.message.isEmpty ? "Redis \(self.code.rawValue)" : "Redis \(self.code.rawValue): \(self.message)"
    }
}
