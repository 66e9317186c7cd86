/// The answer to a retraction: how many recipients the notification had and what became of their pushes.
public struct RetractResult: Encodable, Sendable, Hashable {
    public var notificationID: String
    public var recipients: Int
    /// Pushes that were waiting and will never be sent.
    public var cancelled: Int
    /// Pushes a worker had claimed: it drops them unless the send already started.
    public var inFlight: Int
    /// Pushes already sent (or cancelled before).
    public var alreadyDone: Int

    enum CodingKeys: String, CodingKey {
        case notificationID = "notification_id"
        case recipients, cancelled
        case inFlight = "in_flight"
        case alreadyDone = "already_done"
    }
}
