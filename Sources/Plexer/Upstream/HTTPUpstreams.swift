import AsyncHTTPClient
import Configuration
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NotifyCore
import Synchronization

/// The HTTP channels' upstream calls: one pooled client for every route (connections are reused per host), a
/// timeout per route, and a bound on the requests each upstream gets at once from this process.
public final class HTTPUpstreams: Sendable {
    public let routes: [String: UpstreamRoute]
    private let client: HTTPClient
    /// Requests waiting per channel.
    private let inFlight = RouteSlots()

    private let failures: UpstreamFailures

    /// PEM of certificate authorities the upstreams' TLS is trusted by besides the system's (`plexer.upstreamCaFile`:
    /// an internal CA, tests); the WebSocket channels use it too.
    public let caFile: String?

    public init(routes: [UpstreamRoute], caFile: String? = nil, logger: Logger = Logger(label: "notify.plexer")) {
        self.failures = UpstreamFailures(logger: logger)
        self.caFile = caFile
        self.routes = Dictionary(routes.map { ($0.channel, $0) }, uniquingKeysWith: { first, _ in first })
        var configuration = HTTPClient.Configuration()
        // Operator-configured upstreams; still, a redirect is the upstream's answer, not a hop to follow.
        configuration.redirectConfiguration = .disallow
        configuration.timeout = HTTPClient.Configuration.Timeout(connect: .seconds(2))
        configuration.connectionPool = HTTPClient.Configuration.ConnectionPool(
            idleTimeout: .seconds(60),
            concurrentHTTP1ConnectionsPerHostSoftLimit: max(
                8, routes.filter { $0.kind == .http }.map(\.maxInFlight).max() ?? 8))
        configuration.tlsConfiguration = TrustedAuthorities.clientTLS(caFile: caFile)
        self.client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// The routes (`plexer.routes`) and trusted authorities (`plexer.upstreamCaFile`) of `config`, scoped to
    /// `plexer`.
    public convenience init(config: ConfigReader, logger: Logger = Logger(label: "notify.plexer"))
        throws(NotifyConfigError)
    {
        self.init(
            routes: try UpstreamRoute.routes(config: config),
            caFile: try TrustedAuthorities.file(config, key: "upstreamCaFile", setting: "plexer.upstreamCaFile"),
            logger: logger)
    }

    /// Calls the upstream; returns the reply frame's members (`"status":…,"headers":{…},"body":…`). An upstream
    /// that refuses, fails or takes longer than its timeout is `upstream_unavailable`; one that answers (any
    /// status) is passed on.
    func call(_ request: UpstreamRequest, route: UpstreamRoute) async throws -> String {
        guard self.inFlight.take(route) else {
            self.failures.record(route.channel, .limit)
            throw PlexerFailure(
                "upstream_unavailable",
                "channel \(route.channel) has \(route.maxInFlight) requests waiting; retry later")
        }
        defer { self.inFlight.give(route.channel) }
        var outgoing = HTTPClientRequest(url: route.origin + request.target)
        outgoing.method = HTTPMethod(rawValue: request.method)
        for (name, value) in request.headers { outgoing.headers.add(name: name, value: value) }
        if let body = request.body { outgoing.body = .bytes(body) }
        let deadline = NIODeadline.now() + .milliseconds(Int64(route.timeoutMs))
        let response: HTTPClientResponse
        let body: ByteBuffer
        do {
            let request = outgoing
            (response, body) = try await Self.within(milliseconds: route.timeoutMs) {
                let response = try await self.client.execute(request, deadline: deadline)
                return (response, try await response.body.collect(upTo: route.maxResponseBytes))
            }
        } catch is NIOTooManyBytesError {
            self.failures.record(route.channel, .tooLarge)
            throw PlexerFailure(
                "upstream_unavailable", "channel \(route.channel) answered more than \(route.maxResponseBytes) bytes")
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout {
            self.failures.record(route.channel, .timeout)
            throw PlexerFailure(
                "upstream_unavailable", "channel \(route.channel) did not answer within \(route.timeoutMs) ms")
        } catch is UpstreamTimeout {
            self.failures.record(route.channel, .timeout)
            throw PlexerFailure(
                "upstream_unavailable", "channel \(route.channel) did not answer within \(route.timeoutMs) ms")
        } catch {
            self.failures.record(route.channel, .unreachable, error: error)
            throw PlexerFailure("upstream_unavailable", "channel \(route.channel) is unreachable")
        }
        return Self.replyMembers(response, body: body, route: route)
    }

    /// `operation`'s result, or ``UpstreamTimeout`` after `milliseconds` (the whole exchange, body included: the
    /// client's deadline ends with the head). The timer is a NIO task on the caller's event loop (requests run on
    /// their socket's loop): a sleeping child task per request cost a Dispatch timer and two task hops.
    private static func within<T: Sendable>(
        milliseconds: Int, _ operation: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let exchange = Task { try await operation() }
        let timedOut = TimeoutFlag()
        let loop = MultiThreadedEventLoopGroup.currentEventLoop ?? MultiThreadedEventLoopGroup.singleton.next()
        let timer = loop.scheduleTask(in: .milliseconds(Int64(milliseconds))) {
            timedOut.fired.store(true, ordering: .relaxed)
            exchange.cancel()
        }
        defer { timer.cancel() }
        do {
            return try await withTaskCancellationHandler {
                try await exchange.value
            } onCancel: {
                exchange.cancel()
            }
        } catch {
            if timedOut.fired.load(ordering: .relaxed) { throw UpstreamTimeout() }
            throw error
        }
    }

    static func replyMembers(_ response: HTTPClientResponse, body: ByteBuffer, route: UpstreamRoute) -> String {
        // A header sent several times becomes one, its values joined (RFC 9110 §5.3).
        var values: [String: [String]] = [:]
        var order: [String] = []
        for (name, value) in response.headers where route.responseHeaders.contains(name.lowercased()) {
            let name = name.lowercased()
            if values[name] == nil { order.append(name) }
            values[name, default: []].append(value)
        }
        let headers = order.map { "\(JSONText.quoted($0)):\(JSONText.quoted(values[$0]!.joined(separator: ", ")))" }
        var members = "\"status\":\(response.status.code),\"headers\":{\(headers.joined(separator: ","))}"
        guard body.readableBytes > 0 else { return members }
        let isJSON = response.headers.first(name: "Content-Type")?.lowercased().contains("json") ?? false
        let data = Data(body.readableBytesView)
        if isJSON, EmbeddableJSON.check(body.readableBytesView) {
            members += ",\"body\":" + String(decoding: data, as: UTF8.self)
        } else if let text = String(validating: body.readableBytesView, as: UTF8.self) {
            members += ",\"body\":" + JSONText.quoted(text)
        } else {
            members += ",\"body_base64\":\"" + data.base64EncodedString() + "\""
        }
        return members
    }

    public func shutdown() async throws {
        try await self.client.shutdown()
    }
}

/// Set when a request's timer fired first.
private final class TimeoutFlag: Sendable {
    let fired = Atomic<Bool>(false)
}

/// The whole upstream exchange took longer than the route's timeout.
struct UpstreamTimeout: Error {}
