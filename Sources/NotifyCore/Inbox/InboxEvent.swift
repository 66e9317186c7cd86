import NIOCore

/// One event of a user's inbox: its id (the stream entry id) and its JSON members, stored pre-rendered.
///
/// The ingest renders the members once per notification (`"notification_id":…,"type":…,"payload":…`); the same
/// bytes go into every recipient's inbox entry and live message, and every reader only adds the id around them.
public struct InboxEvent: Sendable, Hashable {
    public var id: StreamID
    /// JSON object members without the braces and without `id`.
    public var members: String

    public init(id: StreamID, members: String) {
        self.id = id
        self.members = members
    }

    /// The event as one JSON object: `{"id":"<id>",<members>}`.
    public var json: String {
        "{\"id\":\"\(self.id)\",\(self.members)}"
    }

    /// Parses a live message, `<id> <members>`.
    public init?(liveMessage payload: ByteBuffer) {
        let text = String(buffer: payload)
        guard let space = text.firstIndex(of: " "), let id = StreamID(String(text[..<space])) else { return nil }
        self.init(id: id, members: String(text[text.index(after: space)...]))
    }

    /// The stream field that holds the members.
    public static let field = "e"
}
