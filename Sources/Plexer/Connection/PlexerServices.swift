import Logging
import NotifyAPI
import NotifyCore

/// What every socket of a Plexer shares.
public struct PlexerServices: Sendable {
    public var feed: InboxFeed
    public var verifier: UserTokenVerifier
    public var acknowledger: EventAcknowledger
    public var configuration: PlexerConfiguration
    /// The configured upstream channels.
    public var upstreams: HTTPUpstreams
    /// Opens the WebSocket channels' upstream sockets.
    let sockets: UpstreamSockets
    /// The client sockets held, against the configured limits.
    let counts: SocketCounts
    public var logger: Logger
    /// Whether sockets keep their JWT (a route forwards it as the identity).
    let keepsTokens: Bool

    public init(
        feed: InboxFeed, verifier: UserTokenVerifier, acknowledger: EventAcknowledger,
        configuration: PlexerConfiguration, upstreams: HTTPUpstreams = HTTPUpstreams(routes: []), logger: Logger
    ) {
        self.feed = feed
        self.verifier = verifier
        self.acknowledger = acknowledger
        self.configuration = configuration
        self.sockets = UpstreamSockets(routes: upstreams.routes.values, caFile: upstreams.caFile, logger: logger)
        self.counts = SocketCounts(
            maxSockets: configuration.maxSockets, maxPerUser: configuration.maxSocketsPerUser)
        self.upstreams = upstreams
        self.logger = logger
        self.keepsTokens = upstreams.routes.values.contains { $0.identity == .jwt }
    }
}
