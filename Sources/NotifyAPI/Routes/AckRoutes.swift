import DelayQueue
import Hummingbird
import Metrics
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
            self.ids = try container.decodeIfPresent([String].self, forKey: .ids)
            self.upTo = try container.decodeIfPresent(String.self, forKey: .upTo)
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

    let queue: DelayQueue
    let maxIDs: Int
    let maxBodyBytes: Int
    private static let cancelled = Counter(label: "notify_pushes_cancelled_by_ack_total")

    func register(on group: RouterGroup<APIRequestContext>) {
        group.post { request, context -> Response in
            let user = try context.userID()
            let body = try await JSONBody.decode(AckRequest.self, from: request, limit: self.maxBodyBytes)
            let summary: CancelSummary
            switch (body.ids, body.upTo) {
            case (let ids?, nil):
                guard (1...self.maxIDs).contains(ids.count) else {
                    throw Problem.invalidRequest("ids must have 1 to \(self.maxIDs) event ids", fields: ["ids"])
                }
                var events: [StreamID] = []
                for (index, text) in ids.enumerated() {
                    events.append(try InboxRoutes.eventID(text, name: "ids[\(index)]")!)
                }
                summary = try await self.queue.cancelPending(userID: user, eventIDs: events)
            case (nil, let upTo?):
                summary = try await self.queue.cancelUpTo(
                    userID: user, eventID: try InboxRoutes.eventID(upTo, name: "up_to")!)
            default:
                throw Problem.invalidRequest("send either ids or up_to", fields: ["ids", "up_to"])
            }
            Self.cancelled.increment(by: summary.cancelled)
            return try JSONBody.response(
                AckResponse(
                    cancelled: summary.cancelled, inFlight: summary.markedClaimed, alreadySent: summary.alreadyDone))
        }
    }
}
