import AsyncHTTPClient
import DelayQueue
import Foundation
import Logging
import NIOCore
import NIOSSL
import NotifyCore
import RedisClient
import ServiceLifecycle

/// A push worker: a ``QueueConsumer`` whose handler is a ``PushDispatcher`` over the configured gateways. On
/// graceful shutdown it stops claiming, finishes the sends in flight, settles them and closes its HTTP clients.
public final class PushWorkerService: Service, Sendable {
    public let consumer: QueueConsumer
    public let dispatcher: PushDispatcher
    /// The VAPID public key browsers subscribe with (`applicationServerKey`), when Web Push is on.
    public let vapidPublicKey: String?
    private let clients: [HTTPClient]
    private let egress: EgressClients

    public static func make(
        queue: DelayQueue, subscriber: RedisSubscriber?, configuration: PushWorkerConfiguration, logger: Logger,
        id: String? = nil, now: @escaping @Sendable () -> Date = { Date() }
    ) async throws -> PushWorkerService {
        var http = HTTPClient.Configuration(
            tlsConfiguration: TrustedAuthorities.clientTLS(caFile: configuration.caFile),
            redirectConfiguration: .disallow,
            timeout: .init(connect: .seconds(5), read: .milliseconds(Int64(configuration.requestTimeoutMs))))
        http.httpVersion = .automatic
        http.connectionPool = .init(idleTimeout: .seconds(300))
        // HTTP/1.1 receivers get as many connections as the provider may have requests in flight (AHC's default
        // is 8, and requests queued behind them would spend their timeout waiting).
        http.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = configuration.maxInFlightPerProvider
        // Credentials first: a bad key fails here, before any client exists that would need shutting down.
        var apnsToken: APNsProviderToken?
        if let apns = configuration.apns {
            apnsToken = try await APNsProviderToken(p8: apns.keyPEM, keyID: apns.keyID, teamID: apns.teamID)
        }
        var vapid: VAPIDSigner?
        if let webPush = configuration.webPush {
            vapid = try await VAPIDSigner(privateKey: webPush.vapidKey, subject: webPush.subject)
        }
        let egress = EgressClients(policy: configuration.egress, configuration: http)
        var clients: [HTTPClient] = []
        var senders: [any PushSender] = [WebhookSender(clients: egress, timeoutMs: configuration.requestTimeoutMs)]
        if let vapid {
            senders.append(WebPushSender(clients: egress, vapid: vapid, timeoutMs: configuration.requestTimeoutMs))
        }
        if let apns = configuration.apns, let token = apnsToken {
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: http)
            clients.append(client)
            senders.append(
                APNsSender(settings: apns, token: token, client: client, timeoutMs: configuration.requestTimeoutMs))
        }
        if let fcm = configuration.fcm {
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: http)
            clients.append(client)
            let token: FCMAccessToken
            do {
                token = try await FCMAccessToken(account: fcm.serviceAccount, http: client)
            } catch {
                for client in clients { try? await client.shutdown() }
                await egress.shutdown()
                throw error
            }
            senders.append(
                FCMSender(baseURL: fcm.baseURL, token: token, client: client, timeoutMs: configuration.requestTimeoutMs)
            )
        }
        let dispatcher = PushDispatcher(
            queue: queue, senders: senders, configuration: configuration, logger: logger, now: now)
        let consumer = QueueConsumer(
            queue: queue, subscriber: subscriber, id: id ?? "worker-\(UUID().uuidString.prefix(8))", logger: logger
        ) { job, control in
            await dispatcher.handle(job, control)
        }
        logger.info(
            "push worker ready",
            metadata: ["notify.providers": "\(senders.map(\.provider.rawValue).sorted().joined(separator: ","))"])
        return PushWorkerService(
            consumer: consumer, dispatcher: dispatcher, vapidPublicKey: vapid?.publicKey, clients: clients,
            egress: egress
        )
    }

    private init(
        consumer: QueueConsumer, dispatcher: PushDispatcher, vapidPublicKey: String?, clients: [HTTPClient],
        egress: EgressClients
    ) {
        self.consumer = consumer
        self.dispatcher = dispatcher
        self.vapidPublicKey = vapidPublicKey
        self.clients = clients
        self.egress = egress
    }

    public func run() async throws {
        do {
            try await self.consumer.run()
        } catch {
            await self.shutdownClients()
            throw error
        }
        await self.shutdownClients()
    }

    private func shutdownClients() async {
        await self.egress.shutdown()
        for client in self.clients {
            try? await client.shutdown()
        }
    }
}
