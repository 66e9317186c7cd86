import NotifyCore

/// Sends one push to one device through one gateway and says what the gateway's answer means.
public protocol PushSender: Sendable {
    var provider: PushProvider { get }
    /// Never throws: every failure is a ``PushOutcome`` (a network error is a retry, a refused address a dead
    /// letter).
    func send(_ push: OutgoingPush, to device: DeviceStore.Entry) async -> PushOutcome
}
