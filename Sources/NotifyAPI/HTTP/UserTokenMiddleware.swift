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
        let token = try BearerToken.user(
            authorization: request.headers[.authorization],
            accessToken: request.uri.queryParameters.get("access_token"))
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
