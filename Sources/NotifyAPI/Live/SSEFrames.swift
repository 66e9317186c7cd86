import NIOCore
import NotifyCore

/// The bytes of `GET /v1/stream`'s Server-Sent Events, shared by its two servers (``SSEStreamHandler`` and the
/// router's ``StreamRoutes``), so both speak exactly the same stream.
enum SSEFrames {
    /// Sent once subscribed and caught up: every event from now on will arrive. `retry` sets the client's
    /// reconnect delay.
    static let ready = ByteBuffer(string: "retry: 2000\n: ready\n\n")
    static let heartbeat = ByteBuffer(string: ": heartbeat\n\n")
    static let overflow = ByteBuffer(string: "event: overflow\ndata: {\"reconnect\":true}\n\n")
    static let tokenExpired = ByteBuffer(string: "event: token-expired\ndata: {\"reconnect\":true}\n\n")

    /// Events after the resume point were trimmed from the inbox; `oldest` is the oldest id still kept.
    static func lost(oldest: StreamID?) -> ByteBuffer {
        let id = oldest.map { #""\#($0)""# } ?? "null"
        return ByteBuffer(string: "event: lost\ndata: {\"oldest_id\":\(id)}\n\n")
    }

    /// `id: <id>\nevent: notification\ndata: {"id":"<id>",<members>}\n\n`, written in one buffer.
    static func notification(_ event: InboxEvent) -> ByteBuffer {
        let id = event.id.description
        var buffer = ByteBufferAllocator().buffer(capacity: 2 * id.utf8.count + event.members.utf8.count + 48)
        buffer.writeStaticString("id: ")
        buffer.writeString(id)
        buffer.writeStaticString("\nevent: notification\ndata: {\"id\":\"")
        buffer.writeString(id)
        buffer.writeStaticString("\",")
        buffer.writeString(event.members)
        buffer.writeStaticString("}\n\n")
        return buffer
    }
}
