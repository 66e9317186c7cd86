import Foundation
import NIOCore
import NIOWebSocket
import NotifyCore

/// The text of every message the Plexer sends (`docs/PLEXER_PROTOCOL.md`), built directly as bytes: events are
/// written for every socket of a user, and their members are JSON already.
public enum PlexerFrames {
    /// `{"ch":"sys","ev":"ready",…}`: authenticated; requests are taken from now on.
    public static func ready(user: String, expiresAt: Int64, maxMessageBytes: Int) -> ByteBuffer {
        ByteBuffer(
            string: #"{"ch":"sys","ev":"ready","user":\#(JSONText.quoted(user)),"expires_at":\#(expiresAt),"#
                + #""max_message_bytes":\#(maxMessageBytes)}"#)
    }

    /// A successful reply; `members` are JSON object members (may be empty).
    public static func reply(channel: String, id: RequestID?, members: String = "") -> ByteBuffer {
        var text = #"{"ch":\#(JSONText.quoted(channel)),"id":\#(id?.json ?? "null"),"ok":true"#
        if !members.isEmpty { text += "," + members }
        return ByteBuffer(string: text + "}")
    }

    /// An error reply (also for requests without id: errors are never dropped).
    public static func error(channel: String?, id: RequestID?, _ failure: PlexerFailure) -> ByteBuffer {
        var error = #""code":\#(JSONText.quoted(failure.code)),"message":\#(JSONText.quoted(failure.message))"#
        if let retryMs = failure.retryMs { error += #","retry_ms":\#(retryMs)"# }
        return ByteBuffer(
            string: #"{"ch":\#(JSONText.quoted(channel ?? "sys")),"id":\#(id?.json ?? "null"),"error":{\#(error)}}"#)
    }

    /// `{"ch":"notify","ev":"notification","event":{"id":"<id>",<members>}}`, in one buffer.
    public static func notification(_ event: InboxEvent) -> ByteBuffer {
        let id = event.id.description
        var buffer = ByteBufferAllocator().buffer(capacity: id.utf8.count + event.members.utf8.count + 64)
        buffer.writeStaticString(#"{"ch":"notify","ev":"notification","event":{"id":""#)
        buffer.writeString(id)
        buffer.writeStaticString(#"","#)
        buffer.writeString(event.members)
        buffer.writeStaticString("}}")
        return buffer
    }

    /// Events after the resume point were trimmed from the inbox; `oldest` is the oldest id still kept.
    public static func lost(oldest: StreamID?) -> ByteBuffer {
        let id = oldest.map { #""\#($0)""# } ?? "null"
        return ByteBuffer(string: #"{"ch":"notify","ev":"lost","oldest_id":\#(id)}"#)
    }

    /// The live feed stopped (`reason`: `unavailable`); the client sends `resume` again after a backoff.
    public static func feedEnded(reason: String) -> ByteBuffer {
        ByteBuffer(string: #"{"ch":"notify","ev":"ended","reason":\#(JSONText.quoted(reason))}"#)
    }

    /// The Plexer shuts down: reconnect after `retryMs`.
    public static func reconnect(retryMs: Int) -> ByteBuffer {
        ByteBuffer(string: #"{"ch":"sys","ev":"reconnect","retry_ms":\#(retryMs)}"#)
    }

    /// A message from a WebSocket channel's upstream: JSON text as `data`, other text as `text`, bytes as
    /// `binary` (base64); `nil` for text that is not UTF-8.
    static func upstreamMessage(channel: String, opcode: WebSocketOpcode, data: ByteBuffer) -> ByteBuffer? {
        let head = #"{"ch":\#(JSONText.quoted(channel)),"ev":"message","#
        guard opcode == .text else {
            return ByteBuffer(string: head + #""binary":"\#(Data(data.readableBytesView).base64EncodedString())"}"#)
        }
        guard let text = String(validating: data.readableBytesView, as: UTF8.self) else { return nil }
        if EmbeddableJSON.check(data.readableBytesView) {
            return ByteBuffer(string: head + #""data":"# + text + "}")
        }
        return ByteBuffer(string: head + #""text":"# + JSONText.quoted(text) + "}")
    }

    /// A WebSocket channel's upstream socket ended; the channel's next message opens a new one.
    static func upstreamClosed(channel: String, code: Int, reason: String) -> ByteBuffer {
        ByteBuffer(
            string: #"{"ch":\#(JSONText.quoted(channel)),"ev":"closed","code":\#(code),"#
                + #""reason":\#(JSONText.quoted(reason))}"#)
    }
}
