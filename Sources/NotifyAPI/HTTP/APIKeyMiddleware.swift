import Hummingbird
import NotifyCore

/// Lets through requests with a configured API key (`Authorization: Bearer <key>`), as a backend or an admin.
struct APIKeyMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext

    enum Role: Sendable {
        case backend
        case admin
    }

    let verifier: APIKeyVerifier
    let role: Role

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let key = try BearerToken.from(request)
        guard let name = self.verifier.verify(key) else {
            throw Problem.unauthorized(self.role == .admin ? "the admin key is not valid" : "the API key is not valid")
        }
        var context = context
        context.identity = self.role == .admin ? .admin(keyName: name) : .backend(keyName: name)
        return try await next(request, context)
    }
}
