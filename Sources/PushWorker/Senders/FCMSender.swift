import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationEssentialsCompat
import NIOHTTP1
import NotifyCore

/// FCM HTTP v1: one `messages:send` per registration token, with the notification, string data and the
/// Android/APNs/Web Push overrides for collapse key, time to live and priority.
public struct FCMSender: PushSender {
    public var provider: PushProvider { .fcm }
    let baseURL: String
    let token: FCMAccessToken
    let client: HTTPClient
    let timeoutMs: Int

    public init(baseURL: String, token: FCMAccessToken, client: HTTPClient, timeoutMs: Int) {
        self.baseURL = baseURL
        self.token = token
        self.client = client
        self.timeoutMs = timeoutMs
    }

    public func prepare(_ push: OutgoingPush, to entry: DeviceStore.Entry) async -> Preparation {
        guard let registration = entry.device.token else {
            return .failed(.removeDevice(reason: "FCM device without token"))
        }
        let body: [UInt8]
        do {
            body = try Self.body(push, token: registration)
        } catch {
            return .failed(.deadLetter(reason: "the FCM message could not be encoded: \(error)"))
        }
        var request = HTTPClientRequest(
            url: "\(self.baseURL)/v1/projects/\(self.token.account.projectID)/messages:send")
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: body))
        return .ready(PreparedPush(client: self.client, request: request, destination: "fcm"))
    }

    public func execute(_ prepared: PreparedPush) async -> PushOutcome {
        var (outcome, refused) = await self.exchange(prepared, rejecting: nil)
        if case .refreshCredentialsAndRetry(let reason) = outcome {
            (outcome, _) = await self.exchange(prepared, rejecting: refused)
            if case .refreshCredentialsAndRetry = outcome { outcome = .breakCircuit(reason: reason) }
        }
        return outcome
    }

    /// Returns the outcome and the authorization value it was sent with.
    private func exchange(_ prepared: PreparedPush, rejecting refused: String?) async -> (PushOutcome, String?) {
        var prepared = prepared
        let authorization: String
        do {
            authorization = try await self.token.authorization(rejecting: refused)
        } catch {
            return (.breakCircuit(reason: "no FCM access token: \(error)"), nil)
        }
        prepared.request.headers.replaceOrAdd(name: "authorization", value: authorization)
        let (outcome, _) = await GatewayCall.classify(
            prepared, provider: .fcm, timeoutMs: self.timeoutMs, reason: Self.reason)
        return (outcome, authorization)
    }

    /// The FCM error code when the answer has one (`details[].errorCode`), else the canonical status; for
    /// `INVALID_ARGUMENT` the message too, since only it tells a bad token from a bad payload.
    static func reason(_ call: GatewayCall) -> String {
        struct Answer: Decodable {
            struct Failure: Decodable {
                struct Detail: Decodable { var errorCode: String? }
                var status: String?
                var message: String?
                var details: [Detail]?
            }
            var error: Failure?
        }
        guard call.status >= 300, let answer = try? JSONDecoder().decode(Answer.self, from: call.body),
            let error = answer.error
        else { return "" }
        let code = error.details?.compactMap(\.errorCode).first ?? error.status ?? ""
        if code == "INVALID_ARGUMENT", let message = error.message { return "\(code): \(message.prefix(200))" }
        return code
    }

    static func body(_ push: OutgoingPush, token: String) throws -> [UInt8] {
        let message = push.message
        var notification: [String: String] = [:]
        notification["title"] = push.title
        notification["body"] = push.body
        var android: [String: Any] = [
            "priority": push.isHighPriority ? "HIGH" : "NORMAL", "ttl": "\(push.ttlSeconds)s",
        ]
        // Data-only messages reach iOS as background pushes, which APNs takes at priority 5 only.
        var apnsHeaders = [
            "apns-priority": push.isHighPriority && !push.isSilent ? "10" : "5",
            "apns-push-type": push.isSilent ? "background" : "alert",
            "apns-expiration": "\(push.expiresAtSeconds)",
        ]
        var webpushHeaders = ["TTL": "\(push.ttlSeconds)", "Urgency": push.isHighPriority ? "high" : "normal"]
        if let key = message.push.collapseKey {
            android["collapse_key"] = key
            apnsHeaders["apns-collapse-id"] = key
            webpushHeaders["Topic"] = push.topic
        }
        var aps: [String: Any] = ["badge": push.badge]
        if push.isSilent { aps["content-available"] = 1 }
        if let room = message.room { aps["thread-id"] = room }
        var fields: [String: Any] = [
            "token": token, "data": push.data, "android": android,
            "apns": ["headers": apnsHeaders, "payload": ["aps": aps]], "webpush": ["headers": webpushHeaders],
        ]
        if !notification.isEmpty { fields["notification"] = notification }
        return Array(try JSONSerialization.data(withJSONObject: ["message": fields], options: [.sortedKeys]))
    }
}
