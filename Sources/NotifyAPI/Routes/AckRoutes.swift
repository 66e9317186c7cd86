import DelayQueue
import Hummingbird
import NotifyCore

/// `POST /v1/ack`: the app fetched these events, so their pushes must not go out.
struct AckRoutes {
    struct AckRequest: Decodable {
        var ids: [String]?
        var upTo: String?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case ids
            case upTo = "up_to"
        }

        init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self)
            let container = try decoder.container(keyedBy: CodingKeys.self)
            // Present means a value: `null` is refused like any other wrong type (it would read as "absent").
            self.ids = try container.contains(.ids) ? container.decode([String].self, forKey: .ids) : nil
            self.upTo = try container.contains(.upTo) ? container.decode(String.self, forKey: .upTo) : nil
        }
    }

    struct AckResponse: Encodable {
        /// Pushes that were waiting and will never be sent.
        var cancelled: Int
        /// Pushes a worker had already claimed: it drops them unless its send had started.
        var inFlight: Int
        /// Pushes already sent.
        var alreadySent: Int

        enum CodingKeys: String, CodingKey {
            case cancelled
            case inFlight = "in_flight"
            case alreadySent = "already_sent"
        }
    }

    let acknowledger: EventAcknowledger
    let maxBodyBytes: Int

    func register(on group: RouterGroup<APIRequestContext>) {
        group.post { request, context -> Response in
            let user = try context.userID()
            let body = try await JSONBody.decode(AckRequest.self, from: request, limit: self.maxBodyBytes)
            guard body.ids != nil || body.upTo != nil else {
                throw Problem.invalidRequest("send ids, up_to, or both", fields: ["ids", "up_to"])
            }
            var events: [StreamID] = []
            if let ids = body.ids {
                let maxIDs = self.acknowledger.maxIDs
                guard (1...maxIDs).contains(ids.count) else {
                    throw Problem.invalidRequest("ids must have 1 to \(maxIDs) event ids", fields: ["ids"])
                }
                for (index, text) in ids.enumerated() {
                    events.append(try InboxRoutes.eventID(text, name: "ids[\(index)]")!)
                }
            }
            let upTo = try body.upTo.map { try InboxRoutes.eventID($0, name: "up_to")! }
            let summary = try await self.acknowledger.ack(userID: user, ids: events, upTo: upTo)
            return try JSONBody.response(
                AckResponse(
                    cancelled: summary.cancelled, inFlight: summary.markedClaimed, alreadySent: summary.alreadyDone))
        }
    }
}
