import NIOCore
import NIOHTTP1

/// The server a live-benchmark run drives, and how its streams and publishes look on the wire: Notify's SSE
/// stream and ingest API, or nchan's EventSource subscriber and publisher locations. Both get the same payload,
/// `{"t":<send stamp ns>,"k":<event number>}`, which the stream hands back inside its event data.
struct LiveTarget: Sendable {
    enum Kind: String, Sendable, Codable {
        case notify
        case nchan
    }

    /// How streams are opened: Server-Sent Events, or a WebSocket (Notify's Plexer, nchan's websocket subscriber).
    enum Transport: String, Sendable, Codable {
        case sse
        case websocket
    }

    var kind: Kind
    var host: String
    var port: Int
    var transport = Transport.sse
    /// Where streams connect (Notify's Plexer listens on a port of its own).
    var streamPort: Int
    var userPrefix: String
    /// Notify: the backend API key, and a user token per stream.
    var apiKey: String = ""
    var tokens: [String] = []
    /// Notify: each event also schedules the default push (inbox + push job), else `"push": null`.
    var withPush = false

    func user(_ index: Int) -> String { "\(self.userPrefix)\(index)" }

    /// Notify says `: ready` once the stream is subscribed and caught up; nchan's subscriber is registered when
    /// it answers.
    var readyOnResponseHead: Bool { self.kind == .nchan }

    func streamHead(user: Int) -> HTTPRequestHead {
        var headers: HTTPHeaders = ["host": "\(self.host):\(self.port)", "accept": "text/event-stream"]
        switch self.kind {
        case .notify:
            headers.add(name: "authorization", value: "Bearer \(self.tokens[user])")
            return HTTPRequestHead(version: .http1_1, method: .GET, uri: "/v1/stream", headers: headers)
        case .nchan:
            return HTTPRequestHead(version: .http1_1, method: .GET, uri: "/sub/\(self.user(user))", headers: headers)
        }
    }

    /// The WebSocket handshake's target and subprotocol.
    func webSocketTarget(user: Int) -> (uri: String, subprotocol: String?) {
        switch self.kind {
        case .notify: ("/ws?access_token=\(self.tokens[user])", "notify.v1")
        case .nchan: ("/ws/\(self.user(user))", nil)
        }
    }

    func postHead(user: Int) -> HTTPRequestHead {
        var headers: HTTPHeaders = ["host": "\(self.host):\(self.port)", "content-type": "application/json"]
        switch self.kind {
        case .notify:
            headers.add(name: "authorization", value: "Bearer \(self.apiKey)")
            return HTTPRequestHead(version: .http1_1, method: .POST, uri: "/v1/notifications", headers: headers)
        case .nchan:
            return HTTPRequestHead(version: .http1_1, method: .POST, uri: "/pub/\(self.user(user))", headers: headers)
        }
    }

    func postBody(event: Int, user: Int, stampNs: UInt64) -> ByteBuffer {
        let payload = #"{"t":\#(stampNs),"k":\#(event)}"#
        switch self.kind {
        case .notify:
            let push = self.withPush ? "" : #","push":null"#
            return ByteBuffer(
                string: #"{"recipients":["\#(self.user(user))"],"type":"custom","payload":\#(payload)\#(push)}"#)
        case .nchan:
            return ByteBuffer(string: payload)
        }
    }
}
