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

    public func send(_ push: OutgoingPush, to entry: DeviceStore.Entry) async -> PushOutcome {
        guard let text = entry.device.url, let url = URL(string: text) else {
            return .deadLetter(reason: "webhook device has no URL")
        }
        guard let secretText = entry.device.secret, let secret = try? WebhookSecret(secretText) else {
            return .deadLetter(reason: "webhook device has no valid secret; register it again")
        }
        let client: HTTPClient
        do {
            client = try await self.clients.client(for: url)
        } catch {
            return .deadLetter(reason: "refused: \(error.description)")
        }
        let message = push.message
        let body = Body(
            userId: push.jobID.userID, deviceId: entry.id, notificationId: message.notificationID,
            eventId: message.eventID, eventIds: push.eventIDs, notificationType: message.type, room: message.room,
            title: push.title, body: push.body, data: push.data, collapseKey: message.push.collapseKey,
            badge: push.badge, coalesced: push.count)
        let bytes: [UInt8]
        do {
            let encoder = JSONEncoder()
            bytes = Array(try encoder.encode(body))
        } catch {
            return .deadLetter(reason: "the webhook body could not be encoded: \(error)")
        }
        let id = "msg_" + Base64URL.encode(push.messageID(deviceID: entry.id))
        let timestamp = Int64(self.now().timeIntervalSince1970)
        var request = HTTPClientRequest(url: text)
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        request.headers.add(name: "user-agent", value: "notify-push")
        request.headers.add(name: "webhook-id", value: id)
        request.headers.add(name: "webhook-timestamp", value: "\(timestamp)")
        request.headers.add(
            name: "webhook-signature",
            value: WebhookSignature.sign(id: id, timestamp: timestamp, body: bytes, secret: secret))
        request.body = .bytes(ByteBuffer(bytes: bytes))
        do {
            let call = try await GatewayCall.perform(request, on: client, timeoutMs: self.timeoutMs)
            return PushOutcome.classify(
                GatewayResponse(status: call.status, retryAfterMs: call.retryAfterMs), from: .webhook)
        } catch {
            return PushOutcome.classify(
                GatewayResponse(status: nil, reason: GatewayCall.describe(error)), from: .webhook)
        }
    }
}
