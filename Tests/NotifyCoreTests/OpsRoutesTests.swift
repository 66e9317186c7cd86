import Hummingbird
import HummingbirdTesting
import Metrics
import NotifyCore
import NotifyTestSupport
import Prometheus
import RedisClient
import Testing

@Suite("Ops endpoints", .timeLimit(.minutes(3)))
struct OpsRoutesTests {
    @Test("/metrics shows what was recorded in the registry, in Prometheus text format")
    func metrics() async throws {
        let registry = PrometheusCollectorRegistry()
        let factory = PrometheusMetricsFactory(registry: registry)
        let counter = Counter(label: "notify_test_events_total", dimensions: [("kind", "a")], factory: factory)
        counter.increment(by: 3)
        let router = Router()
        OpsRoutes(registry: registry) { ReadinessReport(checks: []) }.register(on: router)
        let app = Application(router: router)
        try await app.test(.router) { client in
            try await client.execute(uri: "/metrics", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType]?.hasPrefix("text/plain") == true)
                #expect(String(buffer: response.body).contains(#"notify_test_events_total{kind="a"} 3"#))
            }
        }
    }

    @Test("/readyz is 200 while Redis answers and 503 with the reason when it does not")
    func readiness() async throws {
        // Long enough for a first connect on a loaded machine (2 s was not, with the whole suite beside it).
        try await withRedisClient(configure: { $0.acquireTimeoutMs = 8_000 }) { redis, server in
            let router = Router()
            OpsRoutes(registry: PrometheusCollectorRegistry()) {
                ReadinessReport(checks: [await ReadinessReport.redis(redis)])
            }.register(on: router)
            let app = Application(router: router)
            try await app.test(.router) { client in
                try await client.execute(uri: "/healthz", method: .get) { #expect($0.status == .ok) }
                try await client.execute(uri: "/readyz", method: .get) { response in
                    #expect(response.status == .ok)
                    #expect(String(buffer: response.body) == #"{"status":"ready","checks":{"redis":"ok"}}"#)
                }
                server.kill()
                try await client.execute(uri: "/readyz", method: .get) { response in
                    #expect(response.status == .serviceUnavailable)
                    let body = String(buffer: response.body)
                    #expect(body.contains(#""status":"not ready""#))
                    #expect(body.contains("connection"))
                }
                try await client.execute(uri: "/healthz", method: .get) { #expect($0.status == .ok) }
            }
        }
    }
}
