import DelayQueue
import Hummingbird
import HummingbirdCore
import Logging
import NotifyCore

/// The HTTP API: backend, app and admin endpoints on one router, each group behind its own authentication.
///
/// | group | auth | endpoints |
/// |---|---|---|
/// | backend | API key | `POST /v1/notifications`, `DELETE /v1/notifications/{id}`, `/v1/users/{user}/devices[/{id}]`, `/v1/users/{user}/preferences` |
/// | app | user JWT | `GET /v1/stream`, `GET /v1/inbox`, `POST /v1/ack`, `/v1/devices[/{id}]`, `/v1/preferences` |
/// | admin | admin key | `DELETE /v1/admin/notifications/{id}`, `GET /v1/admin/queues`, `GET /v1/admin/dead`, `POST /v1/admin/dead/replay` |
public struct APIServer: Sendable {
    public let ingestor: Ingestor
    public let inbox: Inbox
    public let feed: InboxFeed
    public let queue: DelayQueue
    public let devices: DeviceStore
    public let preferences: PreferenceStore
    public let backendKeys: APIKeyVerifier
    public let adminKeys: APIKeyVerifier
    public let userTokens: UserTokenVerifier
    public let configuration: APIConfiguration

    public init(
        ingestor: Ingestor, inbox: Inbox, feed: InboxFeed, queue: DelayQueue, devices: DeviceStore,
        preferences: PreferenceStore, backendKeys: APIKeyVerifier,
        adminKeys: APIKeyVerifier, userTokens: UserTokenVerifier, configuration: APIConfiguration
    ) {
        self.ingestor = ingestor
        self.inbox = inbox
        self.feed = feed
        self.queue = queue
        self.devices = devices
        self.preferences = preferences
        self.backendKeys = backendKeys
        self.adminKeys = adminKeys
        self.userTokens = userTokens
        self.configuration = configuration
    }

    /// Acks events for the API and for a Plexer in the same process.
    public var acknowledger: EventAcknowledger {
        EventAcknowledger(queue: self.queue, maxIDs: self.configuration.maxAckIDs)
    }

    /// A router with every API route and the problem and metrics middlewares; the caller adds the ops routes.
    public func makeRouter() -> Router<APIRequestContext> {
        let router = Router(context: APIRequestContext.self)
        router.add(middleware: ConnectionLoopMiddleware())
        router.add(middleware: RequestLogMiddleware())
        router.add(middleware: ProblemMiddleware())
        router.add(middleware: MetricsMiddleware())
        self.addRoutes(to: router)
        return router
    }

    /// HTTP/1 with `GET /v1/stream` served by ``SSEStreamHandler`` ahead of the router (which serves every other
    /// request): pass it as the `server` of the API's `Application`.
    public func httpServer(logger: Logger) -> HTTPServerBuilder {
        let service = SSEStreamHandler.Service(
            feed: self.feed, verifier: self.userTokens, heartbeat: .milliseconds(self.configuration.heartbeatMs),
            stallTimeout: .milliseconds(Int64(self.configuration.streamStallMs)), logger: logger)
        return .http1(
            configuration: HTTP1Channel.Configuration(additionalChannelHandlers: [SSEStreamHandler(service: service)]))
    }

    func addRoutes(to router: Router<APIRequestContext>) {
        let limits = self.configuration
        let backend = APIKeyMiddleware(verifier: self.backendKeys, role: .backend)
        let user = UserTokenMiddleware(verifier: self.userTokens)
        let notifications = NotificationRoutes(ingestor: self.ingestor, maxBodyBytes: limits.maxBodyBytes)
        notifications.register(on: router.group("v1/notifications").add(middleware: backend))
        StreamRoutes(feed: self.feed, heartbeatMs: limits.heartbeatMs)
            .register(on: router.group("v1/stream").add(middleware: user))
        InboxRoutes(inbox: self.inbox, maxPageSize: limits.maxPageSize)
            .register(on: router.group("v1/inbox").add(middleware: user))
        AckRoutes(acknowledger: self.acknowledger, maxBodyBytes: 64 * 1024)
            .register(on: router.group("v1/ack").add(middleware: user))
        let devices = DeviceRoutes(store: self.devices, egress: self.configuration.egress)
        let preferences = PreferenceRoutes(store: self.preferences, maxDelayMs: self.queue.configuration.maxDelayMs)
        devices.register(on: router.group("v1/devices").add(middleware: user))
        preferences.register(on: router.group("v1/preferences").add(middleware: user))
        // The same for a backend that manages its users' devices and preferences itself.
        devices.register(on: router.group("v1/users/:user/devices").add(middleware: backend))
        preferences.register(on: router.group("v1/users/:user/preferences").add(middleware: backend))
        AdminRoutes(queue: self.queue, notifications: notifications)
            .register(
                on: router.group("v1/admin").add(middleware: APIKeyMiddleware(verifier: self.adminKeys, role: .admin)))
    }
}
