import NIOWebSocket

/// Why the Plexer closes a socket: the close codes of `docs/PLEXER_PROTOCOL.md`, RFC 6455's where one fits and our
/// own (4000–4999, the range RFC 6455 leaves to applications) for the rest.
public enum PlexerCloseCode: UInt16, Sendable, CaseIterable {
    case normal = 1000
    /// The Plexer restarts; the client reconnects after the `sys`/`reconnect` frame's `retry_ms`.
    case goingAway = 1001
    case protocolError = 1002
    /// A binary message: only text is spoken.
    case unsupportedData = 1003
    /// A text message that is not UTF-8.
    case invalidUTF8 = 1007
    case messageTooBig = 1009
    case internalError = 1011
    /// The process holds as many sockets as it may (`plexer.maxSockets`): reconnect later, or elsewhere.
    case tryAgainLater = 1013
    case authFailed = 4001
    case authTimeout = 4002
    case tokenExpired = 4003
    /// The client did not take its messages fast enough; it resumes from its last event id.
    case tooSlow = 4004
    case rateLimited = 4005
    case idle = 4006
    /// The user holds as many sockets on this process as allowed (`plexer.maxSocketsPerUser`).
    case tooManySockets = 4007

    /// The reason sent with the code when none more precise is given (a close reason has at most 123 bytes).
    public var reason: String {
        switch self {
        case .normal: "bye"
        case .goingAway: "the server is restarting; reconnect"
        case .protocolError: "WebSocket protocol error"
        case .unsupportedData: "only text messages are accepted"
        case .invalidUTF8: "a text message is not valid UTF-8"
        case .messageTooBig: "message too big"
        case .internalError: "internal error"
        case .tryAgainLater: "the server holds as many sockets as it may; retry later"
        case .authFailed: "authentication failed"
        case .authTimeout: "no authentication in time"
        case .tokenExpired: "the token expired; reconnect with a fresh one"
        case .tooSlow: "too slow to take its messages; reconnect and resume"
        case .rateLimited: "rate limited"
        case .idle: "idle for too long"
        case .tooManySockets: "this user holds as many sockets as allowed; close one first"
        }
    }

    var errorCode: WebSocketErrorCode {
        WebSocketErrorCode(codeNumber: Int(self.rawValue))
    }
}
