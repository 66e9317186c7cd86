import DelayQueue
import Foundation
import Hummingbird
import NotifyCore

/// `GET /v1/preferences` and `PUT /v1/preferences` (replaces them all): mutes, quiet hours, push delay (also
/// served to backends under `/v1/users/{user}/preferences`).
struct PreferenceRoutes {
    let store: PreferenceStore
    let maxDelayMs: Int
    static let maxMutes = 500

    func register(on group: RouterGroup<APIRequestContext>) {
        group.get { _, context -> Response in
            try Self.response(try await self.store.get(userID: try context.subjectUserID()))
        }
        group.put { request, context -> Response in
            let user = try context.subjectUserID()
            let preferences = try await JSONBody.decode(
                Preferences.self, from: request, limit: 64 * 1024, dates: .iso8601)
            if let (field, reason) = preferences.problem(maxMutes: Self.maxMutes, maxDelayMs: self.maxDelayMs) {
                throw Problem.invalidRequest("\(field): \(reason)", fields: [field])
            }
            try await self.store.put(userID: user, preferences)
            return try Self.response(try await self.store.get(userID: user))
        }
    }

    private static func response(_ preferences: Preferences) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return JSONBody.response(json: try encoder.encode(preferences))
    }
}
