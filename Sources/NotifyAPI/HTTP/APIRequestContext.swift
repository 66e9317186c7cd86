import Hummingbird

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

    public init(source: Source) {
        self.coreContext = .init(source: source)
        self.identity = nil
    }

    /// The authenticated user; only reachable behind ``UserTokenMiddleware``.
    func userID() throws -> String {
        guard case .user(let id) = self.identity else { throw Problem.unauthorized("a user token is required") }
        return id
    }

    /// The authenticated backend's key name; only reachable behind ``APIKeyMiddleware``.
    func backendKeyName() throws -> String {
        guard case .backend(let name) = self.identity else { throw Problem.unauthorized("an API key is required") }
        return name
    }
}
