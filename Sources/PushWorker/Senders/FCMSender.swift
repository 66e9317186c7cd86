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

    public func send(_ push: OutgoingPush, to entry: DeviceStore.Entry) async -> PushOutcome {
        guard let registration = entry.device.token else { return .removeDevice(reason: "FCM device without token") }
        let body: [UInt8]
        do {
            body = try Self.body(push, token: registration)
        } catch {
            return .deadLetter(reason: "the FCM message could not be encoded: \(error)")
        }
        var request = HTTPClientRequest(
            url: "\(self.baseURL)/v1/projects/\(self.token.account.projectID)/messages:send")
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: body))
        var outcome = await self.exchange(request, rejected: false)
        if case .refreshCredentialsAndRetry(let reason) = outcome {
            outcome = await self.exchange(request, rejected: true)
            if case .refreshCredentialsAndRetry = outcome { outcome = .breakCircuit(reason: reason) }
        }
        return outcome
    }

    private func exchange(_ request: HTTPClientRequest, rejected: Bool) async -> PushOutcome {
        var request = request
        do {
            request.headers.replaceOrAdd(
                name: "authorization", value: try await self.token.authorization(rejected: rejected))
        } catch {
            return .breakCircuit(reason: "no FCM access token: \(error)")
        }
        do {
            let call = try await GatewayCall.perform(request, on: self.client, timeoutMs: self.timeoutMs)
            return PushOutcome.classify(
                GatewayResponse(status: call.status, reason: Self.reason(call), retryAfterMs: call.retryAfterMs),
                from: .fcm)
        } catch {
            return PushOutcome.classify(GatewayResponse(status: nil, reason: GatewayCall.describe(error)), from: .fcm)
        }
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
        var apnsHeaders = ["apns-priority": push.isHighPriority ? "10" : "5", "apns-push-type": "alert"]
        var webpushHeaders = ["TTL": "\(push.ttlSeconds)", "Urgency": push.isHighPriority ? "high" : "normal"]
        if let key = message.push.collapseKey {
            android["collapse_key"] = key
            apnsHeaders["apns-collapse-id"] = key
            webpushHeaders["Topic"] = String(
                key.filter { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }.prefix(32))
        }
        var aps: [String: Any] = ["badge": push.badge]
        if let room = message.room { aps["thread-id"] = room }
        var fields: [String: Any] = [
            "token": token, "data": push.data, "android": android,
            "apns": ["headers": apnsHeaders, "payload": ["aps": aps]], "webpush": ["headers": webpushHeaders],
        ]
        if !notification.isEmpty { fields["notification"] = notification }
        return Array(try JSONSerialization.data(withJSONObject: ["message": fields], options: [.sortedKeys]))
    }
}
