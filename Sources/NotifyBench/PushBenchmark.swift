import AsyncHTTPClient
import Crypto
import DelayQueue
import FakePushGateways
import Foundation
import Hummingbird
import HummingbirdHTTP2
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL
import NotifyCore
import PushWorker
import RedisClient
import ServiceLifecycle
import Synchronization

/// `notify bench push`: a burst of jobs due at once, two devices each (a webhook and a Web Push subscription),
/// sent by a push worker to the fake gateways (which check every request as the real services do), over
/// HTTP/1.1 and over HTTP/2 with TLS; and, as the limit, the same gateways driven directly by a plain
/// async-http-client loop with the same concurrency, building the same valid requests (encryption, VAPID,
/// signature) without a queue. Then the due→sent lag of a steady rate.
public struct PushBenchmark: Sendable {
    public struct Options: Sendable {
        public var jobs = 50_000
        /// Requests in flight, for the worker and for the plain loop.
        public var concurrency = 512
        public var steadyRate = 1_000
        public var steadySeconds = 10
        public var runs = 1
        /// Which of `http1` and `h2` to run.
        public var modes: Set<String> = ["http1", "h2"]
        public init() {}
    }

    public struct Row: Sendable {
        public var mode: String
        public var oursPerSecond: Double
        public var limitPerSecond: Double
        public var lagP50Ms: Double
        public var lagP99Ms: Double
        public var lagMaxMs: Double
        /// CPU per push, in microseconds: this process (worker or plain loop, and the fake gateways both use)
        /// and the bench's Redis, over the phase.
        public var oursCPUMicros: Double
        public var limitCPUMicros: Double
        public var oursRedisMicros: Double
    }

    public struct Report: Sendable {
        public var rows: [Row]
        public var steadyP50Ms: Double
        public var steadyP99Ms: Double
        public var steadyMaxMs: Double
        public var peakRSSMiB: Double
    }

    let url: RedisURL
    let options: Options
    let logger: Logger

    public init(url: RedisURL, options: Options, logger: Logger) {
        self.url = url
        self.options = options
        self.logger = logger
    }

    /// The setting shared by the worker and the plain loop.
    struct Setting: Sendable {
        var client: RedisClient
        var gateway: FakePushGateway
        var authority: TestCertificateAuthority
        var plainBase: String
        var secureBase: String
        var vapidKey: P256.Signing.PrivateKey
        var secret: WebhookSecret
    }

    public func run(progress: @escaping @Sendable (String) -> Void) async throws -> Report {
        let client = RedisClient(
            configuration: RedisClientConfiguration(url: self.url, maxConnections: 4), logger: self.logger)
        let authority = try TestCertificateAuthority()
        defer { authority.remove() }
        let gateway = FakePushGateway(logger: self.logger, keepsBodies: false)
        let (ports, portContinuation) = AsyncStream.makeStream(of: (String, Int).self)
        let plain = Application(
            router: gateway.router(),
            configuration: ApplicationConfiguration(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { portContinuation.yield(("plain", $0.localAddress?.port ?? 0)) }, logger: self.logger)
        let secure = Application(
            router: gateway.router(), server: try .http2Upgrade(tlsConfiguration: authority.serverTLS()),
            configuration: ApplicationConfiguration(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { portContinuation.yield(("secure", $0.localAddress?.port ?? 0)) }, logger: self.logger)
        let services = ServiceGroup(
            configuration: ServiceGroupConfiguration(services: [client, plain, secure], logger: self.logger))
        return try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask {
                defer { portContinuation.finish() }
                try await services.run()
            }
            var bound: [String: Int] = [:]
            for await (name, port) in ports {
                bound[name] = port
                if bound.count == 2 { break }
            }
            let setting = Setting(
                client: client, gateway: gateway, authority: authority,
                plainBase: "http://127.0.0.1:\(bound["plain"] ?? 0)",
                secureBase: "https://localhost:\(bound["secure"] ?? 0)",
                vapidKey: P256.Signing.PrivateKey(), secret: WebhookSecret.generate())
            do {
                let report = try await self.measure(setting, progress: progress)
                await services.triggerGracefulShutdown()
                try await tasks.waitForAll()
                return report
            } catch {
                await services.triggerGracefulShutdown()
                try? await tasks.waitForAll()
                throw error
            }
        }
    }

    private func measure(_ setting: Setting, progress: @escaping @Sendable (String) -> Void) async throws -> Report {
        var rows: [Row] = []
        for (mode, base) in [("http1", setting.plainBase), ("h2", setting.secureBase)]
        where self.options.modes.contains(mode) {
            var ours: [Double] = []
            var limits: [Double] = []
            var lags = (p50: [Double](), p99: [Double](), max: [Double]())
            var cpu = (ours: [Double](), limit: [Double](), redis: [Double]())
            for run in 1...self.options.runs {
                let prefix = "bp\(mode)\(run)"
                let users = try await self.register(
                    setting, prefix: prefix, base: base, count: self.options.jobs, webPush: true)
                let pushes = Double(users.count * 2)
                let (rate, lag, before) = try await self.burst(setting, prefix: prefix, users: users)
                let between = try await CPUUsage.sample(setting.client)
                let limit = try await self.plainLoop(setting, users: users, base: base)
                let after = try await CPUUsage.sample(setting.client)
                cpu.ours.append((between.process - before.process) / pushes * 1e6)
                cpu.redis.append((between.redis - before.redis) / pushes * 1e6)
                cpu.limit.append((after.process - between.process) / pushes * 1e6)
                progress(
                    "  \(mode) run \(run): worker \(Int(rate)) pushes/s (lag p50 \(lag.percentile(50)) ms, p99 "
                        + "\(lag.percentile(99)) ms, max \(lag.percentile(100)) ms), plain loop \(Int(limit)) pushes/s; "
                        + "CPU per push: worker phase \(Int(cpu.ours.last!)) µs + Redis \(Int(cpu.redis.last!)) µs, "
                        + "plain loop phase \(Int(cpu.limit.last!)) µs")
                ours.append(rate)
                limits.append(limit)
                lags.p50.append(lag.percentile(50))
                lags.p99.append(lag.percentile(99))
                lags.max.append(lag.percentile(100))
            }
            rows.append(
                Row(
                    mode: mode, oursPerSecond: median(ours), limitPerSecond: median(limits), lagP50Ms: median(lags.p50),
                    lagP99Ms: median(lags.p99), lagMaxMs: median(lags.max), oursCPUMicros: median(cpu.ours),
                    limitCPUMicros: median(cpu.limit), oursRedisMicros: median(cpu.redis)))
        }
        let steady = try await self.steady(setting)
        progress(
            "  steady \(self.options.steadyRate)/s: lag p50 \(steady.percentile(50)) ms, p99 \(steady.percentile(99)) ms"
        )
        return Report(
            rows: rows, steadyP50Ms: steady.percentile(50), steadyP99Ms: steady.percentile(99),
            steadyMaxMs: steady.percentile(100), peakRSSMiB: Self.peakRSSMiB())
    }

    struct BenchUser: Sendable {
        var id: String
        var webhookURL: String
        var webPushURL: String?
        var subscriber: FakePushGateway.Subscriber?
    }

    /// Users with a webhook (and a Web Push subscription) at `base`, written straight into Redis.
    private func register(_ setting: Setting, prefix: String, base: String, count: Int, webPush: Bool) async throws
        -> [BenchUser]
    {
        let keys = UserKeys(prefix: prefix, shards: ShardMap())
        var users: [BenchUser] = []
        var commands: [RedisCommand] = []
        let encoder = JSONEncoder()
        for index in 0..<count {
            let id = "u\(index)"
            let target = "\(prefix)-\(index)"
            try setting.gateway.setSecret(setting.secret.text, for: target)
            var user = BenchUser(id: id, webhookURL: "\(base)/webhook/\(target)")
            var fields: [RedisArgument] = [.string(keys.devices(id))]
            let hook = Device(platform: .webhook, url: user.webhookURL, secret: setting.secret.text)
            fields += ["hook", .string(String(decoding: try encoder.encode(hook), as: UTF8.self))]
            if webPush {
                let subscriber = setting.gateway.addSubscriber(target)
                user.subscriber = subscriber
                user.webPushURL = "\(base)/webpush/\(target)"
                let browser = Device(
                    platform: .webpush,
                    subscription: .init(
                        endpoint: user.webPushURL!, keys: .init(p256dh: subscriber.p256dh, auth: subscriber.authText)))
                fields += ["browser", .string(String(decoding: try encoder.encode(browser), as: UTF8.self))]
            }
            commands.append(RedisCommand("HSET", fields))
            users.append(user)
            if commands.count == 500 {
                _ = try await setting.client.send(batch: commands)
                commands = []
            }
        }
        if !commands.isEmpty { _ = try await setting.client.send(batch: commands) }
        return users
    }

    private func configuration(_ setting: Setting) -> PushWorkerConfiguration {
        PushWorkerConfiguration(
            maxInFlight: self.options.concurrency, maxInFlightPerProvider: self.options.concurrency,
            requestTimeoutMs: 30_000, allowLoopback: true, caFile: setting.authority.caFile, coalesceWindowMs: 0,
            webPush: .init(vapidKey: setting.vapidKey, subject: "mailto:bench@example.com"))
    }

    private func queue(_ setting: Setting, prefix: String) -> DelayQueue {
        var configuration = DelayQueueConfiguration(keyPrefix: "\(prefix)q")
        // Each job has two devices: twice as many jobs as requests in flight keeps the requests' slots full
        // while some jobs read their devices or settle (the requests in flight stay `concurrency`).
        configuration.maxConcurrentJobs = max(64, self.options.concurrency * 2)
        return DelayQueue(
            client: setting.client, configuration: configuration, userKeys: UserKeys(prefix: prefix, shards: ShardMap())
        )
    }

    /// Schedules one job per user due at `dueAtMs[i]` (the delays are taken from the clock just before each batch
    /// goes out, so the due times are exact however long scheduling takes).
    private func schedule(_ queue: DelayQueue, users: [BenchUser], dueAtMs: (Int) -> Int64) async throws {
        var batch: [(job: QueueJob, due: Int64)] = []
        func flush() async throws {
            let now = Int64(Date().timeIntervalSince1970 * 1_000)
            _ = try await queue.schedule(batch: batch.map { ($0.job, Int(max(0, $0.due - now))) })
            batch = []
        }
        for (index, user) in users.enumerated() {
            let due = dueAtMs(index)
            let message =
                #"{"event_id":"\#(due)-\#(index)","due_ms":\#(due),"notification_id":"b\#(index)","type":"message","#
                + #""room":"general","push":{"title":"New message","body":"You have a new message in #general"}}"#
            let job = QueueJob(
                id: try JobID(notificationID: "b\(index)", userID: user.id), payload: ByteBuffer(string: message))
            batch.append((job, due))
            if batch.count == 500 { try await flush() }
        }
        if !batch.isEmpty { try await flush() }
    }

    /// Runs a worker until `expected` deliveries arrived; returns it for the caller's measurements.
    private func withWorker(_ setting: Setting, queue: DelayQueue, expected: Int, timeout: Duration) async throws {
        let worker = try await PushWorkerService.make(
            queue: queue, subscriber: nil, configuration: self.configuration(setting), logger: self.logger)
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: [worker], logger: self.logger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            do {
                try await setting.gateway.waitForDeliveries(expected, timeout: timeout)
            } catch {
                await group.triggerGracefulShutdown()
                try? await tasks.waitForAll()
                throw error
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }

    /// The worker's rate and lags, and the CPU used before it started (after scheduling).
    private func burst(_ setting: Setting, prefix: String, users: [BenchUser]) async throws
        -> (Double, LatencyRecorder, CPUUsage)
    {
        let queue = self.queue(setting, prefix: prefix)
        try await queue.prepare()
        // Due together, once everything is scheduled (about 20 µs per job, with a second to spare).
        let dueMs = Int64(Date().timeIntervalSince1970 * 1_000) + 1_000 + Int64(users.count / 20)
        try await self.schedule(queue, users: users, dueAtMs: { _ in dueMs })
        setting.gateway.resetDeliveries()
        let expected = users.count * 2
        let start = try await CPUUsage.sample(setting.client)
        try await self.withWorker(setting, queue: queue, expected: expected, timeout: .seconds(600))
        let deliveries = setting.gateway.deliveries
        let lag = LatencyRecorder()
        var last: Int64 = dueMs
        for delivery in deliveries {
            lag.record(delivery.receivedAtMs - dueMs)
            last = max(last, delivery.receivedAtMs)
        }
        return (Double(expected) / (Double(max(1, last - dueMs)) / 1_000), lag, start)
    }

    /// The limit: the same requests, built the same way, sent by `concurrency` tasks in a plain loop.
    private func plainLoop(_ setting: Setting, users: [BenchUser], base: String) async throws -> Double {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.additionalTrustRoots = [.file(setting.authority.caFile)]
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls, redirectConfiguration: .disallow)
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = self.options.concurrency
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        let vapid = try await VAPIDSigner(privateKey: setting.vapidKey, subject: "mailto:bench@example.com")
        setting.gateway.resetDeliveries()
        let next = NextIndex()
        let total = users.count * 2
        let executors = EventLoopTaskExecutors()
        let start = ContinuousClock.now
        do {
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                for _ in 0..<self.options.concurrency {
                    // Spread over the event loops as the worker's jobs are, so both use every core.
                    tasks.addTask(executorPreference: executors.next()) {
                        while true {
                            let index = next.take()
                            guard index < total else { return }
                            let user = users[index / 2]
                            let request =
                                index % 2 == 0
                                ? Self.webhookRequest(user, index: index, secret: setting.secret)
                                : try await Self.webPushRequest(user, vapid: vapid)
                            let response = try await http.execute(request, timeout: .seconds(30))
                            _ = try await response.body.collect(upTo: 64 * 1024)
                            guard (200..<300).contains(response.status.code) else {
                                throw NotifyConfigError("the fake gateway refused the plain loop: \(response.status)")
                            }
                        }
                    }
                }
                try await tasks.waitForAll()
            }
        } catch {
            try? await http.shutdown()
            throw error
        }
        let elapsed = ContinuousClock.now - start
        try await http.shutdown()
        return Double(total) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    }

    static func webhookRequest(_ user: BenchUser, index: Int, secret: WebhookSecret) -> HTTPClientRequest {
        let body = Array(
            #"{"type":"push","user_id":"\#(user.id)","notification_id":"b\#(index)","title":"New message","body":"You have a new message in #general"}"#
                .utf8)
        let id = "msg_\(index)"
        let timestamp = Int64(Date().timeIntervalSince1970)
        var request = HTTPClientRequest(url: user.webhookURL)
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        request.headers.add(name: "webhook-id", value: id)
        request.headers.add(name: "webhook-timestamp", value: "\(timestamp)")
        request.headers.add(
            name: "webhook-signature",
            value: WebhookSignature.sign(id: id, timestamp: timestamp, body: body, secret: secret))
        request.body = .bytes(ByteBuffer(bytes: body))
        return request
    }

    static func webPushRequest(_ user: BenchUser, vapid: VAPIDSigner) async throws -> HTTPClientRequest {
        guard let endpoint = user.webPushURL, let url = URL(string: endpoint), let subscriber = user.subscriber else {
            throw NotifyConfigError("no subscription")
        }
        let plaintext = Array(#"{"title":"New message","body":"You have a new message in #general"}"#.utf8)
        let body = try WebPushEncryption.encrypt(
            plaintext, p256dh: Array(subscriber.privateKey.publicKey.x963Representation), auth: subscriber.auth)
        var request = HTTPClientRequest(url: endpoint)
        request.method = .POST
        request.headers.add(name: "ttl", value: "2419200")
        request.headers.add(name: "urgency", value: "high")
        request.headers.add(name: "content-encoding", value: "aes128gcm")
        request.headers.add(name: "content-type", value: "application/octet-stream")
        request.headers.add(name: "authorization", value: try await vapid.authorization(for: url))
        request.body = .bytes(ByteBuffer(bytes: body))
        return request
    }

    /// Webhook-only users whose jobs fall due at a steady rate; the lag of each from due to arrival.
    private func steady(_ setting: Setting) async throws -> LatencyRecorder {
        let prefix = "bpsteady"
        let count = self.options.steadyRate * self.options.steadySeconds
        let users = try await self.register(
            setting, prefix: prefix, base: setting.plainBase, count: count, webPush: false)
        let queue = self.queue(setting, prefix: prefix)
        try await queue.prepare()
        let start = Int64(Date().timeIntervalSince1970 * 1_000) + 1_000 + Int64(count / 20)
        let spacing = 1_000.0 / Double(self.options.steadyRate)
        try await self.schedule(queue, users: users, dueAtMs: { start + Int64(Double($0) * spacing) })
        // The due times as Redis set them (its clock when each batch's script ran, plus the delay): what the
        // worker is held to, whatever the batches' own latency added.
        var dueByNotification: [String: Int64] = [:]
        for shard in queue.shards.all {
            let reply = try await setting.client.send("ZRANGE", queue.shardKeys(shard)[0], 0, -1, "WITHSCORES")
            let flat = try reply.throwingIfError().array ?? []
            for pair in stride(from: 0, to: flat.count - 1, by: 2) {
                guard let id = flat[pair].string.flatMap(JobID.init(validating:)), let due = flat[pair + 1].string,
                    let ms = Double(due)
                else { continue }
                dueByNotification[id.notificationID] = Int64(ms)
            }
        }
        guard dueByNotification.count == count else {
            throw NotifyConfigError("the steady run scheduled \(dueByNotification.count) of \(count) jobs")
        }
        setting.gateway.resetDeliveries()
        try await self.withWorker(
            setting, queue: queue, expected: count, timeout: .seconds(Int64(self.options.steadySeconds) + 120))
        let lag = LatencyRecorder()
        for delivery in setting.gateway.deliveries {
            guard let index = Int(delivery.target.split(separator: "-").last ?? ""),
                let due = dueByNotification["b\(index)"]
            else { continue }
            lag.record(delivery.receivedAtMs - due)
        }
        return lag
    }

    /// The process's peak resident memory (VmHWM), MiB.
    static func peakRSSMiB() -> Double {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
            let kib = Double(line.split(separator: " ").dropFirst().first ?? "")
        else { return 0 }
        return kib / 1_024
    }
}

/// Hands out 0, 1, 2, … to concurrent tasks.
final class NextIndex: Sendable {
    private let value = Mutex(0)

    func take() -> Int {
        self.value.withLock { value in
            defer { value += 1 }
            return value
        }
    }
}
