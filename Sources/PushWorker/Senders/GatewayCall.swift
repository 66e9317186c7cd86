import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// One HTTP exchange with a gateway: the status, headers and (bounded) body, or why none came.
struct GatewayCall {
    var status: Int
    var headers: HTTPHeaders
    var body: ByteBuffer

    /// The most of an answer body that is kept; gateways answer with small JSON, and the rest is read and dropped
    /// (a large body after a 2xx is still a delivery).
    static let maxBodyBytes = 64 * 1024

    static func perform(_ request: HTTPClientRequest, on client: HTTPClient, timeoutMs: Int) async throws
        -> GatewayCall
    {
        // One deadline for the head and the body: AHC's own ends with the head, and a receiver trickling an
        // endless body must not hold a send slot.
        let deadline = ContinuousClock.now + .milliseconds(timeoutMs)
        let response = try await client.execute(request, timeout: .milliseconds(Int64(timeoutMs)))
        let status = Int(response.status.code)
        var body = ByteBuffer()
        if !(200..<300).contains(status) {
            // Error bodies say why (APNs' reason, FCM's error); a success needs no body, so it is not read.
            body = await Self.collect(response.body, until: deadline)
        }
        return GatewayCall(status: status, headers: response.headers, body: body)
    }

    /// Up to ``maxBodyBytes`` of `body`, or what arrived by `deadline`; the rest is left (the connection is then
    /// closed rather than reused).
    private static func collect(_ body: HTTPClientResponse.Body, until deadline: ContinuousClock.Instant) async
        -> ByteBuffer
    {
        await withTaskGroup(of: ByteBuffer?.self) { group in
            group.addTask {
                var collected = ByteBuffer()
                do {
                    for try await var chunk in body {
                        let take = min(chunk.readableBytes, Self.maxBodyBytes - collected.readableBytes)
                        if let slice = chunk.readSlice(length: take) { collected.writeImmutableBuffer(slice) }
                        if collected.readableBytes >= Self.maxBodyBytes { break }
                    }
                } catch {
                    // The status came; a body cut short does not change what it means.
                }
                return collected
            }
            group.addTask {
                try? await Task.sleep(until: deadline)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first ?? ByteBuffer()
        }
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

    /// Performs `prepared` and classifies the answer for `provider`, with `reason` reading the service's error.
    static func classify(
        _ prepared: PreparedPush, provider: PushProvider, timeoutMs: Int, reason: (GatewayCall) -> String = { _ in "" }
    ) async -> (PushOutcome, GatewayCall?) {
        do {
            let call = try await Self.perform(prepared.request, on: prepared.client, timeoutMs: timeoutMs)
            let response = GatewayResponse(status: call.status, reason: reason(call), retryAfterMs: call.retryAfterMs)
            return (PushOutcome.classify(response, from: provider), call)
        } catch {
            return (
                PushOutcome.classify(GatewayResponse(status: nil, reason: Self.describe(error)), from: provider), nil
            )
        }
    }
}

extension String {
    /// At most `limit` UTF-8 bytes of the string, cut at a character boundary.
    func prefix(utf8Bytes limit: Int) -> String {
        var used = 0
        var end = self.startIndex
        for index in self.indices {
            let size = self[index].utf8.count
            if used + size > limit { break }
            used += size
            end = self.index(after: index)
        }
        return String(self[..<end])
    }
}
