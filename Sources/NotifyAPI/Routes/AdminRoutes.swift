import DelayQueue
import Hummingbird
import NotifyCore

/// Admin endpoints (admin key): queue stats, dead letters and their replay, and retracting any notification.
struct AdminRoutes {
    struct ReplayRequest: Decodable {
        var id: String?
        var all: Bool?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case id, all
        }

        init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self)
            let container = try decoder.container(keyedBy: CodingKeys.self)
            self.id = try container.decodeIfPresent(String.self, forKey: .id)
            self.all = try container.decodeIfPresent(Bool.self, forKey: .all)
        }
    }

    struct ReplayResponse: Encodable {
        var replayed: Int
    }

    let queue: DelayQueue
    let notifications: NotificationRoutes

    func register(on group: RouterGroup<APIRequestContext>) {
        group.delete("notifications/:id") { _, context -> Response in
            try await self.notifications.retract(try context.pathParameter("id"), sender: nil)
        }
        group.get("queues") { _, _ -> Response in
            let (total, shards) = try await self.queue.stats()
            return try JSONBody.response(QueueStatsDocument(total: total, shards: shards))
        }
        group.get("dead") { request, _ -> Response in
            let limit = try InboxRoutes.limit(request.uri.queryParameters.get("limit"), max: 1_000)
            return try JSONBody.response(try await self.queue.deadLetters(limit: limit))
        }
        group.post("dead/replay") { request, _ -> Response in
            let body = try await JSONBody.decode(ReplayRequest.self, from: request, limit: 4_096)
            switch (body.id, body.all) {
            case (let id?, nil):
                guard let job = try? JobID(id) else {
                    throw Problem.invalidRequest("id must be a job id <notification>/<user>", fields: ["id"])
                }
                guard try await self.queue.replay(job) else { throw Problem.notFound("\(id) is not a dead letter") }
                return try JSONBody.response(ReplayResponse(replayed: 1))
            case (nil, true?):
                return try JSONBody.response(ReplayResponse(replayed: try await self.queue.replayAll()))
            default:
                throw Problem.invalidRequest("send either id or \"all\": true", fields: ["id", "all"])
            }
        }
    }
}
