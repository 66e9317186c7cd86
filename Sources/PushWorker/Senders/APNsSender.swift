import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationEssentialsCompat
import NIOHTTP1
import NotifyCore

/// APNs over HTTP/2 with token authentication: one `POST /3/device/<token>` per device, on a client of its own
/// (APNs binds a connection to the team and key of its first push).
public struct APNsSender: PushSender {
    public var provider: PushProvider { .apns }
    let settings: PushWorkerConfiguration.APNs
    let token: APNsProviderToken
    let client: HTTPClient
    let timeoutMs: Int
    let now: @Sendable () -> Date

    /// APNs refuses larger payloads (`PayloadTooLarge`).
    static let maxPayloadBytes = 4_096

    public init(
        settings: PushWorkerConfiguration.APNs, token: APNsProviderToken, client: HTTPClient, timeoutMs: Int,
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.settings = settings
        self.token = token
        self.client = client
        self.timeoutMs = timeoutMs
        self.now = now
    }

    public func prepare(_ push: OutgoingPush, to entry: DeviceStore.Entry) async -> Preparation {
        guard let deviceToken = entry.device.token else {
            return .failed(.removeDevice(reason: "APNs device without token"))
        }
        guard let topic = entry.device.appID ?? self.settings.defaultTopic else {
            return .failed(.deadLetter(reason: "no apns-topic: register the device with app_id or set push.apns.topic"))
        }
        let payload: [UInt8]
        do {
            payload = try Self.payload(push)
        } catch {
            return .failed(.deadLetter(reason: "PayloadTooLarge: \(error)"))
        }
        let base = entry.device.environment == "sandbox" ? self.settings.sandboxURL : self.settings.productionURL
        var request = HTTPClientRequest(url: "\(base)/3/device/\(deviceToken.lowercased())")
        request.method = .POST
        request.headers.add(name: "apns-topic", value: topic)
        request.headers.add(name: "apns-push-type", value: push.isSilent ? "background" : "alert")
        request.headers.add(name: "apns-priority", value: push.isHighPriority && !push.isSilent ? "10" : "5")
        request.headers.add(name: "apns-expiration", value: "\(push.expiresAtSeconds)")
        if let collapse = push.message.push.collapseKey {
            request.headers.add(name: "apns-collapse-id", value: collapse)
        }
        request.headers.add(name: "apns-id", value: push.uuid(deviceID: entry.id))
        request.body = .bytes(ByteBuffer(bytes: payload))
        // One breaker per environment and topic: a device registered for an environment or app the key does
        // not cover fails on its own and holds back only its kind, never every user's iOS pushes.
        let environment = entry.device.environment == "sandbox" ? "sandbox" : "production"
        return .ready(
            PreparedPush(client: self.client, request: request, destination: "apns \(environment) \(topic)"))
    }

    public func execute(_ prepared: PreparedPush) async -> PushOutcome {
        var outcome = await self.exchange(prepared, expiredToken: false)
        if case .refreshCredentialsAndRetry(let reason) = outcome {
            outcome = await self.exchange(prepared, expiredToken: true)
            if case .refreshCredentialsAndRetry = outcome { outcome = .breakCircuit(reason: reason) }
        }
        return outcome
    }

    private func exchange(_ prepared: PreparedPush, expiredToken: Bool) async -> PushOutcome {
        var prepared = prepared
        do {
            prepared.request.headers.replaceOrAdd(
                name: "authorization", value: try await self.token.authorization(expired: expiredToken))
        } catch {
            return .breakCircuit(reason: error.description)
        }
        return await GatewayCall.classify(prepared, provider: .apns, timeoutMs: self.timeoutMs) { call in
            struct Answer: Decodable { var reason: String? }
            return (try? JSONDecoder().decode(Answer.self, from: call.body).reason) ?? ""
        }.0
    }

    /// `{"aps": {alert, badge, sound, thread-id, mutable-content}, …data}` within 4 KB: a body that does not fit
    /// is shortened (the app fetches the event by id).
    static func payload(_ push: OutgoingPush) throws -> [UInt8] {
        func encode(body: String?) throws -> [UInt8] {
            var alert: [String: String] = [:]
            alert["title"] = push.title
            alert["body"] = body
            var aps: [String: Any] = ["badge": push.badge]
            if alert.isEmpty {
                aps["content-available"] = 1  // a silent push: the app wakes and fetches
            } else {
                aps["alert"] = alert
                aps["sound"] = "default"
                aps["mutable-content"] = 1
            }
            if let room = push.message.room { aps["thread-id"] = room }
            var root: [String: Any] = [:]
            for (key, value) in push.data where key != "aps" { root[key] = value }
            root["aps"] = aps
            return Array(try JSONSerialization.data(withJSONObject: root, options: [.sortedKeys]))
        }
        let full = try encode(body: push.body)
        if full.count <= Self.maxPayloadBytes { return full }
        let room = Self.maxPayloadBytes - (try encode(body: nil)).count - 16
        let short = try encode(body: push.body.map { $0.prefix(utf8Bytes: max(0, room)) + "…" })
        guard short.count <= Self.maxPayloadBytes else {
            throw APNsPayloadError(bytes: short.count)
        }
        return short
    }
}

struct APNsPayloadError: Error, CustomStringConvertible {
    var bytes: Int
    var description: String { "\(self.bytes) bytes, more than APNs' 4096 even with the body shortened" }
}
