import Hummingbird
import NotifyCore

/// `GET /v1/inbox`: the user's history, a page at a time.
struct InboxRoutes {
    let inbox: Inbox
    let maxPageSize: Int

    func register(on group: RouterGroup<APIRequestContext>) {
        group.get { request, context -> Response in
            let user = try context.userID()
            let query = request.uri.queryParameters
            let after = try Self.eventID(query.get("after"), name: "after")
            let before = try Self.eventID(query.get("before"), name: "before")
            let limit = try Self.limit(query.get("limit"), max: self.maxPageSize)
            let orderText = query.get("order") ?? Inbox.Order.newestFirst.rawValue
            guard let order = Inbox.Order(rawValue: orderText) else {
                throw Problem.invalidRequest("order must be newest or oldest", fields: ["order"])
            }
            let events = try await self.inbox.page(of: user, after: after, before: before, limit: limit, order: order)
            // The cursor of the next page: pass it as `before` (newest first) or `after` (oldest first).
            let next = events.count == limit ? events.last.map { "\"\($0.id)\"" } ?? "null" : "null"
            let json = "{\"events\":[\(events.map(\.json).joined(separator: ","))],\"next\":\(next)}"
            return JSONBody.response(json: json.utf8)
        }
    }

    static func eventID(_ text: String?, name: String) throws(Problem) -> StreamID? {
        guard let text else { return nil }
        guard let id = StreamID(text) else {
            throw Problem.invalidRequest("\(name) must be an event id like 1700000000000-0", fields: [name])
        }
        return id
    }

    static func limit(_ text: String?, max: Int) throws(Problem) -> Int {
        guard let text else { return min(50, max) }
        guard let limit = Int(text), (1...max).contains(limit) else {
            throw Problem.invalidRequest("limit must be between 1 and \(max)", fields: ["limit"])
        }
        return limit
    }
}
