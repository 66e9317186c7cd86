import Foundation
import Hummingbird
import Prometheus

/// Adds the endpoints every process serves for ops: `/metrics` (Prometheus text), `/healthz` (the process runs)
/// and `/readyz` (its dependencies answer; 503 otherwise).
///
/// They are unauthenticated on purpose, like Prometheus targets and Kubernetes probes: they reveal counters and
/// up/down only, never user data. Expose them on an internal network.
public struct OpsRoutes: Sendable {
    private let registry: PrometheusCollectorRegistry
    private let readiness: @Sendable () async -> ReadinessReport

    /// - Parameters:
    ///   - registry: the registry the process bootstrapped swift-metrics with.
    ///   - readiness: checks the process's dependencies (e.g. Redis answers PING).
    public init(
        registry: PrometheusCollectorRegistry,
        readiness: @escaping @Sendable () async -> ReadinessReport
    ) {
        self.registry = registry
        self.readiness = readiness
    }

    /// Registers the routes on `router`.
    public func register<Context: RequestContext>(on router: Router<Context>) {
        let registry = self.registry
        let readiness = self.readiness
        router.get("metrics") { _, _ -> Response in
            var bytes: [UInt8] = []
            bytes.reserveCapacity(16 * 1024)
            registry.emit(into: &bytes)
            return Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
        }
        router.get("healthz") { _, _ -> Response in
            Self.json(status: .ok, body: #"{"status":"ok"}"#)
        }
        router.get("readyz") { _, _ -> Response in
            let report = await readiness()
            return Self.json(status: report.isReady ? .ok : .serviceUnavailable, body: report.json)
        }
    }

    private static func json(status: HTTPResponse.Status, body: String) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
    }
}

/// The outcome of a readiness check: one line per dependency.
public struct ReadinessReport: Sendable {
    /// Dependency name → nil when fine, or what is wrong.
    public var checks: [(name: String, problem: String?)]

    public init(checks: [(name: String, problem: String?)]) {
        self.checks = checks
    }

    /// Whether every dependency is fine.
    public var isReady: Bool { self.checks.allSatisfy { $0.problem == nil } }

    var json: String {
        let parts = self.checks.map { check -> String in
            let status = check.problem.map { "\"\(Self.escape($0))\"" } ?? "\"ok\""
            return "\"\(Self.escape(check.name))\":\(status)"
        }
        return #"{"status":"\#(self.isReady ? "ready" : "not ready")","checks":{\#(parts.joined(separator: ","))}}"#
    }

    private static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
    }
}
