import Foundation
import Hummingbird
import NotifyCore

/// `GET /v1/devices`, `PUT /v1/devices/{id}`, `DELETE /v1/devices/{id}`: the user's push targets (also served to
/// backends under `/v1/users/{user}/devices`).
struct DeviceRoutes {
    let store: DeviceStore
    let egress: EgressPolicy

    func register(on group: RouterGroup<APIRequestContext>) {
        group.get { _, context -> Response in
            let user = try context.subjectUserID()
            return try JSONBody.response(try await self.store.list(userID: user).mapValues(\.redacted))
        }
        group.put(":id") { request, context -> Response in
            let user = try context.subjectUserID()
            let id = try Self.deviceID(context)
            var device = try await JSONBody.decode(Device.self, from: request, limit: 16 * 1024)
            if let (field, reason) = device.problem(egress: self.egress) {
                throw Problem.invalidRequest("\(field) \(reason)", fields: [field])
            }
            // A webhook keeps its secret when registered again without one (apps re-register on every start);
            // a new one is generated and shown once in this response. The backend rotates it by sending one.
            let given = device.secret != nil
            let candidate = device.platform == .webhook && !given ? WebhookSecret.generate().text : nil
            let (outcome, newSecret) = try await self.store.put(
                userID: user, deviceID: id, device: device, secretIfNew: candidate)
            device.secret = newSecret ?? (given ? device.secret : nil)
            switch outcome {
            case .created: return try JSONBody.response(device, status: .created)
            case .updated: return try JSONBody.response(device)
            case .limitReached:
                throw Problem.conflict(
                    "at most \(self.store.maxDevices) devices per user; delete one (DELETE /v1/devices/{id}) first")
            }
        }
        group.delete(":id") { _, context -> Response in
            let user = try context.subjectUserID()
            guard try await self.store.delete(userID: user, deviceID: try Self.deviceID(context)) else {
                throw Problem.notFound("no such device")
            }
            return Response(status: .noContent)
        }
    }

    private static func deviceID(_ context: APIRequestContext) throws -> String {
        let id = try context.pathParameter("id")
        guard DeviceStore.isValidID(id) else {
            throw Problem.invalidRequest("device ids are 1-128 characters of A-Z a-z 0-9 . _ -", fields: ["id"])
        }
        return id
    }
}
