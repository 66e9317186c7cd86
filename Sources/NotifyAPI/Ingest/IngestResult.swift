import NotifyCore

/// The answer to an ingest: the notification id and, per recipient, the event id and what happens with the push.
public struct IngestResult: Encodable, Sendable, Hashable {
    public struct Recipient: Encodable, Sendable, Hashable {
        public var userID: String
        public var eventID: String
        /// `scheduled`, `deferred` (quiet hours), `muted`, `off` (inbox only), `retracted`, `limited` (the user
        /// has `delayQueue.maxPendingPerUser` pushes waiting), or `duplicate` when
        /// an earlier request with the same idempotency key already delivered it.
        public var push: String

        enum CodingKeys: String, CodingKey {
            case userID = "user_id"
            case eventID = "event_id"
            case push
        }
    }

    public var notificationID: String
    public var recipients: [Recipient]

    enum CodingKeys: String, CodingKey {
        case notificationID = "notification_id"
        case recipients
    }
}

extension IngestResult {
    /// The answer as JSON, the bytes `JSONEncoder` with sorted keys writes, built directly: it is written for every
    /// ingest, and the encoder's generic machinery cost more than the rest of the answer.
    var json: String {
        var text = "{\"notification_id\":" + JSONText.quoted(self.notificationID) + ",\"recipients\":["
        for (index, recipient) in self.recipients.enumerated() {
            if index > 0 { text += "," }
            text +=
                "{\"event_id\":" + JSONText.quoted(recipient.eventID) + ",\"push\":"
                + JSONText.quoted(recipient.push) + ",\"user_id\":" + JSONText.quoted(recipient.userID) + "}"
        }
        return text + "]}"
    }
}
