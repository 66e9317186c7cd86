import Foundation
import HTTPTypes
import NIOHTTP1
import NotifyAPI

/// What a WebSocket handshake asks for: the path, the offered subprotocols and the credentials.
struct HandshakeTarget {
    var path: String
    var isUpgrade: Bool
    var offersSubprotocol: Bool
    /// From `Authorization: Bearer`, else from `?access_token=`; `nil` when neither is there (the first frame
    /// authenticates).
    var token: String?
    /// An `Authorization` header that is not `Bearer <token>`: the socket is refused with 4001.
    var badCredential: String?

    var isAccepted: Bool { self.path == PlexerServer.path && self.isUpgrade && self.offersSubprotocol }

    init?(_ head: HTTPRequestHead) {
        guard let components = URLComponents(string: head.uri) else { return nil }
        self.path = components.path
        self.isUpgrade = head.headers["Upgrade"].contains { $0.lowercased() == "websocket" }
        self.offersSubprotocol = head.headers["Sec-WebSocket-Protocol"]
            .flatMap { $0.split(separator: ",") }
            .contains { $0.trimmingCharacters(in: .whitespaces) == PlexerConnection.subprotocol }
        if let header = head.headers.first(name: "Authorization") {
            do throws(Problem) {
                self.token = try BearerToken.from(header: header)
            } catch {
                self.badCredential = error.detail
            }
        } else {
            self.token = components.queryItems?.first { $0.name == "access_token" }?.value
        }
    }

    /// Why the handshake is not upgraded, as an HTTP problem.
    var refusal: Problem {
        if self.path != PlexerServer.path {
            return Problem(
                type: Problem.typeBase + "not-found", title: "Not found", status: .notFound,
                detail: "the Plexer serves WebSockets at \(PlexerServer.path) only")
        }
        if !self.isUpgrade {
            return Problem(
                type: Problem.typeBase + "upgrade-required", title: "Upgrade required", status: .upgradeRequired,
                detail: "connect with a WebSocket handshake (RFC 6455)")
        }
        return Problem.invalidRequest(
            "offer the subprotocol \(PlexerConnection.subprotocol) (Sec-WebSocket-Protocol); see docs/PLEXER_PROTOCOL.md"
        )
    }
}
