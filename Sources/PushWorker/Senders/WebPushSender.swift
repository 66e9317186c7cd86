import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOFoundationEssentialsCompat
import NIOHTTP1
import NotifyCore

/// Web Push (and UnifiedPush distributors): the push as JSON, encrypted for the subscription (RFC 8291
/// aes128gcm), POSTed to its endpoint with `TTL`, `Urgency` and `Topic` (RFC 8030) and VAPID (RFC 8292).
public struct WebPushSender: PushSender {
    public var provider: PushProvider { .webPush }
    let clients: EgressClients
    let vapid: VAPIDSigner
    let timeoutMs: Int

    public init(clients: EgressClients, vapid: VAPIDSigner, timeoutMs: Int) {
        self.clients = clients
        self.vapid = vapid
        self.timeoutMs = timeoutMs
    }

    /// What the service worker gets in `event.data.json()`.
    struct Payload: Encodable {
        var notificationId: String
        var eventId: String
        var type: String
        var room: String?
        var title: String?
        var body: String?
        var data: [String: String]
        var badge: Int

        enum CodingKeys: String, CodingKey {
            case type, room, title, body, data, badge
            case notificationId = "notification_id"
            case eventId = "event_id"
        }
    }

    public func prepare(_ push: OutgoingPush, to entry: DeviceStore.Entry) async -> Preparation {
        guard let subscription = entry.device.subscription, let url = URL(string: subscription.endpoint),
            let p256dh = Base64URL.decode(subscription.keys.p256dh), let auth = Base64URL.decode(subscription.keys.auth)
        else {
            return .failed(.removeDevice(reason: "the Web Push subscription is unreadable"))
        }
        let pinned: EgressClients.Pinned
        switch await self.clients.client(for: url) {
        case .success(let client): pinned = client
        case .failure(let refusal): return .failed(refusal.outcome)
        }
        let message = push.message
        var payload = Payload(
            notificationId: message.notificationID, eventId: message.eventID, type: message.type,
            room: message.room, title: push.title, body: push.body, data: push.data, badge: push.badge)
        let body: [UInt8]
        do {
            let encoder = JSONEncoder()
            var plaintext = Array(try encoder.encode(payload))
            if plaintext.count > WebPushEncryption.maxPlaintextBytes {
                // The app fetches the event by id anyway: drop what does not fit rather than the push.
                payload.data = ["notification_id": message.notificationID, "event_id": message.eventID]
                payload.title = payload.title.map { $0.prefix(utf8Bytes: 512) }
                payload.body = payload.body.map { $0.prefix(utf8Bytes: 1_024) }
                plaintext = Array(try encoder.encode(payload))
            }
            body = try WebPushEncryption.encrypt(plaintext, p256dh: p256dh, auth: auth)
        } catch let error as WebPushEncryptionError {
            if case .invalidSubscription = error { return .failed(.removeDevice(reason: "\(error)")) }
            return .failed(.deadLetter(reason: "\(error)"))
        } catch {
            return .failed(.deadLetter(reason: "the payload could not be encoded: \(error)"))
        }
        let authorization: String
        do {
            authorization = try await self.vapid.authorization(for: url)
        } catch {
            return .failed(.breakCircuit(reason: "VAPID signing failed: \(error.description)"))
        }
        var request = HTTPClientRequest(url: pinned.url)
        request.method = .POST
        request.headers.add(name: "ttl", value: "\(push.ttlSeconds)")
        request.headers.add(name: "urgency", value: push.isHighPriority ? "high" : "normal")
        if let topic = push.topic { request.headers.add(name: "topic", value: topic) }
        request.headers.add(name: "content-encoding", value: "aes128gcm")
        request.headers.add(name: "content-type", value: "application/octet-stream")
        request.headers.add(name: "authorization", value: authorization)
        request.body = .bytes(ByteBuffer(bytes: body))
        return .ready(PreparedPush(client: pinned.client, request: request, destination: pinned.host))
    }

    public func execute(_ prepared: PreparedPush) async -> PushOutcome {
        await GatewayCall.classify(prepared, provider: .webPush, timeoutMs: self.timeoutMs, reason: Self.reason).0
    }

    /// Autopush's `errno` or Apple's `reason`, when the service said one.
    static func reason(_ call: GatewayCall) -> String {
        struct Answer: Decodable {
            var reason: String?
            var message: String?
            var errno: Int?
        }
        guard call.status >= 300, let answer = try? JSONDecoder().decode(Answer.self, from: call.body) else {
            return ""
        }
        return answer.reason ?? answer.errno.map { "errno \($0)" } ?? answer.message.map { String($0.prefix(200)) }
            ?? ""
    }
}
