import DelayQueue
import Foundation
import Hummingbird
import NIOCore

/// Who made a request, as established by the route group's authentication middleware.
public enum Identity: Sendable, Hashable {
    /// A chat backend, by the name of its API key.
    case backend(keyName: String)
    /// An operator, by the name of their admin key.
    case admin(keyName: String)
    /// An app user, by the user id of their token.
    case user(id: String)
}

/// The request context of the API: Hummingbird's core storage plus the caller's identity.
public struct APIRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var identity: Identity?
    /// When the user's token expires: a stream opened with it ends then (the app reconnects with a fresh one).
    public var tokenExpiresAt: Date?
    /// The loop of the request's connection: a long-lived response (a stream) runs its tasks there.
    public let eventLoop: any EventLoop

    public init(source: Source) {
        self.coreContext = .init(source: source)
        self.identity = nil
        self.tokenExpiresAt = nil
        self.eventLoop = source.channel.eventLoop
    }

    /// The authenticated user; only reachable behind ``UserTokenMiddleware``.
    func userID() throws -> String {
        guard case .user(let id) = self.identity else { throw Problem.unauthorized("a user token is required") }
        return id
    }

    /// Whose devices or preferences a request is about: an app user's own, or, for a backend, the user named in
    /// the path (`/v1/users/{user}/…`).
    func subjectUserID() throws -> String {
        switch self.identity {
        case .user(let id):
            return id
        case .backend:
            let user = try self.pathParameter("user")
            guard JobID.isValidUserID(user) else {
                throw Problem.invalidRequest(
                    "user ids are 1-128 characters of A-Z a-z 0-9 . _ @ : + -", fields: ["user"])
            }
            return user
        default:
            throw Problem.unauthorized("a user token or an API key is required")
        }
    }

    /// The authenticated backend's key name; only reachable behind ``APIKeyMiddleware``.
    func backendKeyName() throws -> String {
        guard case .backend(let name) = self.identity else { throw Problem.unauthorized("an API key is required") }
        return name
    }

    /// A path parameter, percent-decoded (`alice%40example` is `alice@example`): the router hands them over
    /// as they were sent.
    func pathParameter(_ name: String) throws -> String {
        let raw = try self.parameters.require(name)
        guard let decoded = raw.removingPercentEncoding else {
            throw Problem.invalidRequest("\(name) is not valid percent-encoding", fields: [name])
        }
        return decoded
    }
}
