import Foundation
import NotifyAPI
import NotifyCore
import NotifyTestSupport
import RedisClient
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A stream reader over a plain socket with a tiny receive buffer that reads only when told: a client too slow for
/// its events, as the server sees one.
final class StalledStreamClient: Sendable {
    private let fd: Int32

    convenience init(port: Int, path: String, token: String, lastEventID: String) throws {
        try self.init(
            port: port,
            request: "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\n"
                + "Last-Event-ID: \(lastEventID)\r\n\r\n")
    }

    /// Sends `request` as is (several pipelined requests, if it holds several).
    init(port: Int, request: String) throws {
        self.fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard self.fd >= 0 else { throw TestFailure("socket failed") }
        var size: Int32 = 4_096
        setsockopt(self.fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        // Reading ends after 10 s of silence, so a server that never ends the stream fails the test, not hangs it.
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(self.fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(self.fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { throw TestFailure("connect failed") }
        _ = request.withCString { send(self.fd, $0, strlen($0), 0) }
    }

    /// Reads until the server closes the stream or stays silent for 10 s (blocking, on a queue of this read's own,
    /// so a thread of its own: not the tasks' executor, whose threads may be the event loops, nor NIO's thread pool,
    /// which has a thread per core and which several clients' long reads would fill); returns everything read.
    /// With `requireClose`, 10 s of silence is an error: the server had to close the connection.
    func readToEnd(requireClose: Bool = false) async throws -> String {
        let fd = self.fd
        // The socket is closed when the client goes away: keep it until the read is done.
        defer { withExtendedLifetime(self) {} }
        // SO_RCVTIMEO ends each read after 10 s of silence; the deadline bounds a stream that trickles forever.
        return try await Deadline.blocking(
            on: DispatchQueue(label: "notify.test.stalled-stream"), seconds: 120, "the stalled stream's end"
        ) {
            var data = Data()
            var buffer = [UInt8](repeating: 0, count: 65_536)
            while true {
                let count = recv(fd, &buffer, buffer.count, 0)
                if count == 0 { break }
                if count < 0 {
                    if requireClose { throw TestFailure("the server did not close the connection") }
                    break
                }
                data.append(contentsOf: buffer[0..<count])
            }
            return String(decoding: data, as: UTF8.self)
        }
    }

    deinit { close(self.fd) }
}

@Suite("A slow SSE client", .timeLimit(.minutes(3)))
struct SlowStreamTests {
    @Test("a client too slow for its events gets overflow, others are unaffected, and its resume loses nothing")
    func slowClientOverflows() async throws {
        // An inbox long enough to keep every event of the test (a shorter one would rightly report some lost), and a
        // stall timeout longer than the test: the stalled client reads only once every event is posted (slow under a
        // loaded machine), and the server must still hold its overflow notice for it then.
        try await withAPIServer(
            api: APIConfiguration(streamBufferEvents: 4, streamStallMs: 150_000),
            ingest: IngestConfiguration(inboxMaxLength: 10_000)
        ) { api in
            let token = try await api.token(for: "alice")
            let port = try #require(URL(string: api.baseURL)?.port)
            let fast = try await SSEStream.open(api, token: token)
            var fastEvents = fast.events.makeAsyncIterator()
            _ = try await fast.waitUntilReady(&fastEvents)
            // The stalled client resumes after a first event: whenever its stream goes live on the server, it
            // owes the client every event after that one.
            let firstID = try await api.notifyEventID()
            _ = try await fastEvents.nextNotification()
            let slow = try StalledStreamClient(port: port, path: "/v1/stream", token: token, lastEventID: firstID)
            let padding = String(repeating: "x", count: 3_900)
            var sent: [String] = []
            for index in 0..<2_000 {
                sent.append(
                    try await api.notifyEventID(
                        #"{"recipients":["alice"],"type":"message","payload":{"n":\#(index),"p":"\#(padding)"},"push":null}"#
                    ))
                let event = try #require(try await fastEvents.nextNotification())
                #expect(event.id == sent.last, "the fast client gets every event, in order")
            }
            fast.close()

            let seen = try await slow.readToEnd()
            #expect(seen.contains("event: overflow"), "the stalled client is told it fell behind")
            // "\r\n" (the chunked framing) is one Character in Swift: make every line end in "\n" first.
            let lines = seen.replacingOccurrences(of: "\r\n", with: "\n").split(separator: "\n")
            let received = lines.compactMap { line -> String? in
                line.hasPrefix("id: ") ? String(line.dropFirst(4)) : nil
            }
            #expect(received.count < sent.count && received == Array(sent.prefix(received.count)))

            // It resumes from the last id it got and misses nothing.
            let resumed = try await SSEStream.open(api, token: token, lastEventID: received.last)
            var resumedEvents = resumed.events.makeAsyncIterator()
            let rest = try await resumed.waitUntilReady(&resumedEvents).compactMap(\.id)
            #expect(received + rest == sent)
            resumed.close()
        }
    }

    @Test("a live reader that stops reading altogether is closed after the stall timeout, its subscription released")
    func stalledLiveReaderIsClosed() async throws {
        // A buffer large enough that the listener never overflows: only the stall can end this stream.
        try await withAPIServer(
            api: APIConfiguration(streamBufferEvents: 10_000, streamStallMs: 2_000),
            ingest: IngestConfiguration(inboxMaxLength: 10_000)
        ) { api in
            let token = try await api.token(for: "alice")
            let port = try #require(URL(string: api.baseURL)?.port)
            let firstID = try await api.notifyEventID()
            let slow = try StalledStreamClient(port: port, path: "/v1/stream", token: token, lastEventID: firstID)
            try await waitUntil("the stream is live") { api.subscriber.subscribedCount == 1 }
            let padding = String(repeating: "x", count: 3_900)
            var sent: [String] = []
            // About 6 MB: more than the kernel's socket buffers and NIO's high watermark take.
            for index in 0..<1_500 {
                sent.append(
                    try await api.notifyEventID(
                        #"{"recipients":["alice"],"type":"message","payload":{"n":\#(index),"p":"\#(padding)"},"push":null}"#
                    ))
            }
            // Without reading anything, the client is dropped: the server let go of its subscription.
            try await waitUntil("the stalled stream ended") { api.subscriber.subscribedCount == 0 }
            let seen = try await slow.readToEnd(requireClose: true)
            let received = seen.replacingOccurrences(of: "\r\n", with: "\n").split(separator: "\n").compactMap {
                line -> String? in line.hasPrefix("id: ") ? String(line.dropFirst(4)) : nil
            }
            #expect(received.count < sent.count && received == Array(sent.prefix(received.count)))
        }
    }
}

/// Waits for a condition that has no event to await (a server-side count), polling briefly, up to 30 s (a deadline
/// for failures only).
func waitUntil(_ what: String, _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(30)
    while !(try await condition()) {
        guard ContinuousClock.now < deadline else { throw TestFailure("timed out waiting: \(what)") }
        try await Task.sleep(for: .milliseconds(20))
    }
}
