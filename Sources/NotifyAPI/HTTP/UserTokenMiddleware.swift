import Hummingbird
import NotifyCore

/// Lets through requests with a valid user JWT (`Authorization: Bearer <jwt>`, or `?access_token=` for
/// browsers' EventSource, which cannot set headers).
struct UserTokenMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext

    let verifier: UserTokenVerifier

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let token: String
        if request.headers[.authorization] == nil, let query = request.uri.queryParameters.get("access_token") {
            token = query
        } else {
            token = try BearerToken.from(request)
        }
        let user: String
        do {
            user = try await self.verifier.verify(token)
        } catch {
            throw Problem.unauthorized(error.reason)
        }
        var context = context
        context.identity = .user(id: user)
        return try await next(request, context)
    }
}
