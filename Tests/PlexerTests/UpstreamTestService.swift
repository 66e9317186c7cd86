import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdHTTP2
import Logging
import NIOCore
import NIOSSL
import NotifyCore
import NotifyTestSupport
import Plexer
import Synchronization

/// A chat API for the Plexer's upstream channels, on a loopback port: it answers with what it received (method,
/// target, headers, body, whether the identity signature verifies), sends a message's recipient a notification
/// through `onMessage`, and has a route that answers too late and one that answers plain text.
final class UpstreamTestService: Sendable {
    static let secret = "upstream-secret-upstream-secret-upstream-0"
    let onMessage = Mutex<(@Sendable (_ to: String) async throws -> Void)?>(nil)

    func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.post("v1/rooms/:room/messages") { request, context -> Response in
            let echo = try await Self.echo(request, context: context)
            if let to = (echo["body"] as? [String: Any])?["to"] as? String, let notify = self.onMessage.withLock({ $0 })
            {
                try await notify(to)
            }
            return try Self.json(echo, status: .created, extra: [.location: "/v1/rooms/7/messages/m1"])
        }
        router.get("v1/rooms/:room") { request, context -> Response in
            try Self.json(try await Self.echo(request, context: context), status: .ok, extra: [:])
        }
        router.get("v1/slow") { _, _ -> Response in
            try await Task.sleep(for: .seconds(5))  // the upstream that hangs, not a synchronisation
            return Response(status: .ok)
        }
        router.get("v1/drip") { _, _ -> Response in
            // The head at once, then a body that does not come: only the Plexer's own timer ends this request.
            Response(
                status: .ok, headers: [.contentType: "text/plain"],
                body: ResponseBody { writer in
                    try await writer.write(ByteBuffer(string: "a"))
                    try await Task.sleep(for: .seconds(5))  // the upstream that hangs, not a synchronisation
                    try await writer.finish(nil)
                })
        }
        router.get("v1/text") { _, _ -> Response in
            Response(
                status: .ok, headers: [.contentType: "text/plain"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: "hi")))
        }
        return router
    }

    private static func echo(_ request: Request, context: BasicRequestContext) async throws -> [String: Any] {
        var request = request
        let body = try await request.collectBody(upTo: 1 << 20)
        var headers: [String: String] = [:]
        for field in request.headers { headers[field.name.canonicalName] = field.value }
        let target = request.uri.string
        var signatureOK = false
        if let user = headers["x-notify-user"], let timestamp = headers["x-notify-timestamp"],
            let signature = headers["x-notify-signature"]
        {
            let expected = IdentitySignature.sign(
                secret: Self.secret, user: user, timestamp: timestamp, method: request.method.rawValue,
                target: target, body: body.readableBytes > 0 ? body : nil)
            signatureOK = expected == signature
        }
        var echo: [String: Any] = [
            "method": request.method.rawValue, "target": target, "headers": headers, "signature_ok": signatureOK,
        ]
        if body.readableBytes > 0 {
            echo["body"] = try JSONSerialization.jsonObject(with: Data(body.readableBytesView))
        }
        return echo
    }

    private static func json(_ object: [String: Any], status: HTTPResponse.Status, extra: HTTPFields) throws
        -> Response
    {
        var headers: HTTPFields = [.contentType: "application/json", HTTPField.Name("X-Internal")!: "do-not-forward"]
        headers.append(contentsOf: extra)
        return Response(
            status: status, headers: headers,
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: object))))
    }

    /// Runs the service on a loopback port while `body` runs; with `tls`, over TLS (offering h2 and HTTP/1.1).
    func run<T: Sendable>(tls: TLSConfiguration? = nil, _ body: @Sendable (_ port: Int) async throws -> T)
        async throws -> T
    {
        let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
        let onServerRunning: @Sendable (any Channel) async -> Void = { channel in
            portContinuation.yield(channel.localAddress?.port ?? 0)
            portContinuation.finish()
        }
        let configuration = ApplicationConfiguration(address: .hostname("127.0.0.1", port: 0))
        let app =
            if let tls {
                Application(
                    router: self.router(), server: try .http2Upgrade(tlsConfiguration: tls),
                    configuration: configuration, onServerRunning: onServerRunning, logger: testLogger("upstream"))
            } else {
                Application(
                    router: self.router(), configuration: configuration, onServerRunning: onServerRunning,
                    logger: testLogger("upstream"))
            }
        return try await withRunningServices(
            [app], ports: ports, portContinuation: portContinuation, logger: testLogger("upstream")
        ) { port, _ in try await body(port) }
    }
}
