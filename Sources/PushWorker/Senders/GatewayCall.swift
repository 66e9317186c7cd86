import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationEssentialsCompat
import NIOHTTP1

/// One HTTP exchange with a gateway: the status, headers and (bounded) body, or why none came.
struct GatewayCall {
    var status: Int
    var headers: HTTPHeaders
    var body: ByteBuffer

    /// The largest answer body read; gateways answer with small JSON.
    static let maxBodyBytes = 64 * 1024

    static func perform(_ request: HTTPClientRequest, on client: HTTPClient, timeoutMs: Int) async throws
        -> GatewayCall
    {
        let response = try await client.execute(request, timeout: .milliseconds(Int64(timeoutMs)))
        let body = try await response.body.collect(upTo: Self.maxBodyBytes)
        return GatewayCall(status: Int(response.status.code), headers: response.headers, body: body)
    }

    /// `Retry-After` in ms: delta-seconds or an HTTP-date (RFC 9110 §10.2.3); `nil` when absent or unreadable.
    var retryAfterMs: Int? {
        guard let value = self.headers.first(name: "retry-after")?.trimmingCharacters(in: .whitespaces) else {
            return nil
        }
        if let seconds = Int(value) { return max(0, seconds) * 1_000 }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: value) else { return nil }
        return max(0, Int(date.timeIntervalSinceNow * 1_000))
    }

    /// A short, printable description of a failed exchange (no secrets: gateways do not echo credentials).
    static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError {
            return "\(error)"
        }
        return String(describing: type(of: error)) + ": " + String("\(error)".prefix(200))
    }
}
