import Hummingbird
import NotifyCore

/// Runs each request's handler on its connection's event loop. Where NIO's loops are Swift's global executor, a
/// task resumes on the loop that woke it: after each Redis reply, a handler would continue on the Redis
/// connection's loop (one core for every request, and a hop back for the response). Elsewhere a no-op.
struct ConnectionLoopMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext

    func handle(
        _ request: Request, context: APIRequestContext,
        next: (Request, APIRequestContext) async throws -> Response
    ) async throws -> Response {
        guard let executor = EventLoopTaskExecutor.preferring(context.eventLoop) else {
            return try await next(request, context)
        }
        return try await withTaskExecutorPreference(executor) { try await next(request, context) }
    }
}
