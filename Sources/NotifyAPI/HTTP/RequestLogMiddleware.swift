import Hummingbird
import Logging

/// Logs each request at debug level: method, path, status and duration. Only the path: the query string may hold
/// a token (`?access_token=` for browsers' EventSource), and tokens never reach a log line. (Hummingbird's own
/// `LogRequestsMiddleware` logs the whole URI, so it is not used.)
struct RequestLogMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let start = ContinuousClock.now
        do {
            let response = try await next(request, context)
            self.log(request, context: context, status: Int(response.status.code), since: start)
            return response
        } catch let error as any HTTPResponseError {
            self.log(request, context: context, status: Int(error.status.code), since: start)
            throw error
        }
    }

    private func log(_ request: Request, context: Context, status: Int, since start: ContinuousClock.Instant) {
        let elapsed = (ContinuousClock.now - start).components
        let milliseconds = Double(elapsed.seconds) * 1_000 + Double(elapsed.attoseconds) / 1e15
        context.logger.debug(
            "request",
            metadata: [
                "http.method": "\(request.method)", "http.path": "\(request.uri.path)", "http.status": "\(status)",
                "http.duration_ms": "\(milliseconds)",
            ])
    }
}
