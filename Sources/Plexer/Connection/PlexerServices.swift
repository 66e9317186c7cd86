import Logging
import NotifyAPI
import NotifyCore

/// What every socket of a Plexer shares.
public struct PlexerServices: Sendable {
    public var feed: InboxFeed
    public var verifier: UserTokenVerifier
    public var acknowledger: EventAcknowledger
    public var configuration: PlexerConfiguration
    public var logger: Logger

    public init(
        feed: InboxFeed, verifier: UserTokenVerifier, acknowledger: EventAcknowledger,
        configuration: PlexerConfiguration, logger: Logger
    ) {
        self.feed = feed
        self.verifier = verifier
        self.acknowledger = acknowledger
        self.configuration = configuration
        self.logger = logger
    }
}
