import HTTPTypes
import Hummingbird

/// Backend endpoints: `POST /v1/notifications` (ingest) and `DELETE /v1/notifications/{id}` (retract).
struct NotificationRoutes {
    let ingestor: Ingestor
    let maxBodyBytes: Int

    func register(on group: RouterGroup<APIRequestContext>) {
        group.post { request, context -> Response in
            let sender = try context.backendKeyName()
            var body = try await JSONBody.decode(NotificationRequest.self, from: request, limit: self.maxBodyBytes)
            if let header = request.headers[.idempotencyKey] {
                guard body.idempotencyKey == nil || body.idempotencyKey == header else {
                    throw Problem.invalidRequest(
                        "the Idempotency-Key header and idempotency_key differ", fields: ["idempotency_key"])
                }
                body.idempotencyKey = header
            }
            let result = try await self.ingestor.ingest(body, sender: sender)
            return JSONBody.response(json: result.json.utf8, status: .accepted)
        }
        group.delete(":id") { _, context -> Response in
            try await self.retract(try context.pathParameter("id"), sender: try context.backendKeyName())
        }
    }

    /// Retracts as `sender` (the API key that sent the notification), or as an admin when `nil`.
    func retract(_ id: String, sender: String?) async throws -> Response {
        guard let result = try await self.ingestor.retract(notificationID: id, sender: sender) else {
            throw Problem.notFound("no notification \(id) is known (never sent, or older than its record)")
        }
        return try JSONBody.response(result)
    }
}

extension HTTPField.Name {
    static let idempotencyKey = Self("Idempotency-Key")!
    static let lastEventID = Self("Last-Event-ID")!
}
