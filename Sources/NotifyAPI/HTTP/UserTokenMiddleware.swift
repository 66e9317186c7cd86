import Foundation
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
        let verified: (user: String, expiresAt: Date)
        do {
            verified = try await self.verifier.verifyWithExpiry(token)
        } catch {
            throw Problem.unauthorized(error.reason)
        }
        var context = context
        context.identity = .user(id: verified.user)
        context.tokenExpiresAt = verified.expiresAt
        return try await next(request, context)
    }
}
