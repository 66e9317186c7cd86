import AsyncHTTPClient
import NIOCore
import NIOHTTP1

/// One Server-Sent Event (or comment) as a client sees it.
struct SSEEvent: Sendable, Hashable {
    var id: String?
    var event: String?
    var data: String?
    var comment: String?
}

/// A streaming SSE reader over a real socket: events arrive as they are parsed from the body's chunks.
struct SSEStream: Sendable {
    let status: Int
    let events: AsyncThrowingStream<SSEEvent, any Error>
    private let reader: Task<Void, Never>

    static func open(
        _ server: APITestServer, path: String = "/v1/stream", token: String?, lastEventID: String? = nil
    ) async throws -> SSEStream {
        var request = HTTPClientRequest(url: server.baseURL + path)
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let lastEventID { request.headers.add(name: "Last-Event-ID", value: lastEventID) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
        let (events, continuation) = AsyncThrowingStream.makeStream(of: SSEEvent.self)
        let reader = Task {
            var pending = ""
            var current = SSEEvent()
            do {
                for try await chunk in response.body {
                    pending += String(buffer: chunk)
                    while let newline = pending.firstIndex(of: "\n") {
                        let line = String(pending[..<newline])
                        pending.removeSubrange(...newline)
                        if line.isEmpty {
                            if current != SSEEvent() { continuation.yield(current) }
                            current = SSEEvent()
                        } else if line.hasPrefix(":") {
                            continuation.yield(
                                SSEEvent(comment: String(line.dropFirst()).trimmingPrefix(" ").description))
                        } else if let colon = line.firstIndex(of: ":") {
                            let value = String(line[line.index(after: colon)...].drop(while: { $0 == " " }))
                            switch line[..<colon] {
                            case "id": current.id = value
                            case "event": current.event = value
                            case "data": current.data = (current.data.map { $0 + "\n" } ?? "") + value
                            default: break
                            }
                        }
                    }
                }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in reader.cancel() }
        return SSEStream(status: Int(response.status.code), events: events, reader: reader)
    }

    func close() {
        self.reader.cancel()
    }

    /// Reads until the `: ready` comment: from then on every new event is delivered.
    func waitUntilReady(_ iterator: inout AsyncThrowingStream<SSEEvent, any Error>.Iterator) async throws
        -> [SSEEvent]
    {
        var before: [SSEEvent] = []
        while let event = try await iterator.next() {
            if event.comment == "ready" { return before }
            if event.comment == nil { before.append(event) }
        }
        throw TestFailure("the stream ended before it was ready")
    }
}

extension AsyncThrowingStream<SSEEvent, any Error>.Iterator {
    /// The next notification event, skipping comments.
    mutating func nextNotification() async throws -> SSEEvent? {
        while let event = try await self.next() {
            if event.comment == nil { return event }
        }
        return nil
    }
}
