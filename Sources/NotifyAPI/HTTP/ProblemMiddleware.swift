import Foundation
import Hummingbird
import Logging
import RedisClient

/// Turns every error into problem JSON: routing and body errors get their precise type, Redis failures become
/// 503 (the caller may retry; a request that spans several shards may have been partly applied, and a retry with
/// the same idempotency key completes it without duplicates), anything else a 500 that logs the error but never shows it.
struct ProblemMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let problem as Problem {
            throw problem
        } catch let error as HTTPError {
            throw Self.problem(for: error)
        } catch let error as RedisClientError
            where ![.errorReply, .protocolError, .unexpectedReply].contains(error.code)
        {
            context.logger.warning("redis unavailable", metadata: ["error": "\(error)"])
            throw Problem.unavailable(
                "the store is unavailable; part of the request may have been applied: retry with the same "
                    + "idempotency key, which completes it without duplicates")
        } catch is CancellationError {
            throw Problem.unavailable("the server is shutting down")
        } catch {
            context.logger.error("request failed", metadata: ["error": "\(error)"])
            throw Problem(
                type: Problem.typeBase + "internal", title: "Internal error", status: .internalServerError,
                detail: "the error was logged")
        }
    }

    static func problem(for error: HTTPError) -> Problem {
        switch error.status {
        case .notFound:
            Problem.notFound("no such endpoint")
        case .methodNotAllowed:
            Problem(
                type: Problem.typeBase + "method-not-allowed", title: "Method not allowed",
                status: .methodNotAllowed, detail: "this endpoint does not support the method")
        case .contentTooLarge:
            Problem.payloadTooLarge(limitBytes: 0)
        default:
            Problem(
                type: Problem.typeBase + "http-\(error.status.code)", title: error.status.reasonPhrase,
                status: error.status, detail: error.body)
        }
    }
}
