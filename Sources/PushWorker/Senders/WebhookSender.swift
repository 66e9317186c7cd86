import AsyncHTTPClient
import DelayQueue
import Foundation
import NIOCore
import NIOFoundationEssentialsCompat
import NIOHTTP1
import NotifyCore

/// POSTs the push as JSON to the device's URL, signed per Standard Webhooks (`webhook-id`, `webhook-timestamp`,
/// `webhook-signature`) with the device's secret. The id is the same on every retry, so receivers can drop a
/// duplicate.
public struct WebhookSender: PushSender {
    public var provider: PushProvider { .webhook }
    let clients: EgressClients
    let timeoutMs: Int
    let now: @Sendable () -> Date

    public init(clients: EgressClients, timeoutMs: Int, now: @escaping @Sendable () -> Date = { Date() }) {
        self.clients = clients
        self.timeoutMs = timeoutMs
        self.now = now
    }

    /// The JSON body receivers get.
    struct Body: Encodable {
        var type = "push"
        var userId: String
        var deviceId: String
        var notificationId: String
        var eventId: String
        var eventIds: [String]
        var notificationType: String
        var room: String?
        var title: String?
        var body: String?
        var data: [String: String]
        var collapseKey: String?
        var badge: Int
        var coalesced: Int

        enum CodingKeys: String, CodingKey {
            case type, room, title, body, data, badge, coalesced
            case userId = "user_id"
            case deviceId = "device_id"
            case notificationId = "notification_id"
            case eventId = "event_id"
            case eventIds = "event_ids"
            case notificationType = "notification_type"
            case collapseKey = "collapse_key"
        }
    }

    public func prepare(_ push: OutgoingPush, to entry: DeviceStore.Entry) async -> Preparation {
        guard let text = entry.device.url, let url = URL(string: text) else {
            return .failed(.deadLetter(reason: "webhook device has no URL"))
        }
        let secret: WebhookSecret
        do {
            secret = try WebhookSecret(entry.device.secret ?? "")
        } catch {
            return .failed(.deadLetter(reason: "webhook device has no valid secret; register it again"))
        }
        let pinned: EgressClients.Pinned
        switch await self.clients.client(for: url) {
        case .success(let client): pinned = client
        case .failure(let refusal): return .failed(refusal.outcome)
        }
        let message = push.message
        let body = Body(
            userId: push.jobID.userID, deviceId: entry.id, notificationId: message.notificationID,
            eventId: message.eventID, eventIds: push.eventIDs, notificationType: message.type, room: message.room,
            title: push.title, body: push.body, data: push.data, collapseKey: message.push.collapseKey,
            badge: push.badge, coalesced: push.count)
        let bytes: [UInt8]
        do {
            bytes = Array(try JSONEncoder().encode(body))
        } catch {
            return .failed(.deadLetter(reason: "the webhook body could not be encoded: \(error)"))
        }
        let id = "msg_" + Base64URL.encode(push.messageID(deviceID: entry.id))
        let timestamp = Int64(self.now().timeIntervalSince1970)
        var request = HTTPClientRequest(url: pinned.url)
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        request.headers.add(name: "user-agent", value: "notify-push")
        request.headers.add(name: "webhook-id", value: id)
        request.headers.add(name: "webhook-timestamp", value: "\(timestamp)")
        request.headers.add(
            name: "webhook-signature",
            value: WebhookSignature.sign(id: id, timestamp: timestamp, body: bytes, secret: secret))
        request.body = .bytes(ByteBuffer(bytes: bytes))
        return .ready(PreparedPush(client: pinned.client, request: request, destination: pinned.host))
    }

    public func execute(_ prepared: PreparedPush) async -> PushOutcome {
        await GatewayCall.classify(prepared, provider: .webhook, timeoutMs: self.timeoutMs).0
    }
}
