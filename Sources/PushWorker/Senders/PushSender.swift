import AsyncHTTPClient
import NotifyCore

/// Sends one push to one device through one gateway, in two steps, so the cancel check can run between the
/// slow preparation (resolving and checking the host, credentials, encryption) and the request itself.
public protocol PushSender: Sendable {
    var provider: PushProvider { get }
    /// Everything up to the request. Never throws: a device that cannot be sent to is a ``Preparation/failed(_:)``.
    func prepare(_ push: OutgoingPush, to device: DeviceStore.Entry) async -> Preparation
    /// The request and what its answer means (refreshing credentials once when the gateway asks).
    func execute(_ prepared: PreparedPush) async -> PushOutcome
}

/// A gateway request ready to go.
public struct PreparedPush: Sendable {
    public var client: HTTPClient
    public var request: HTTPClientRequest
    /// What the circuit breaker is keyed by: the gateway for APNs and FCM (their credentials are global), the
    /// host for app-supplied URLs (one failing receiver must not hold back the others).
    public var destination: String
}

public enum Preparation: Sendable {
    case ready(PreparedPush)
    /// No request: this is the outcome (a refused address, an unreadable subscription, an oversized payload).
    case failed(PushOutcome)
}
