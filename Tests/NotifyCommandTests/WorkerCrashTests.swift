import DelayQueue
import FakePushGateways
import Foundation
import Hummingbird
import NIOCore
import NotifyCore
import NotifyTestSupport
import PushWorker
import RedisClient
import ServiceLifecycle
import Testing

/// A `notify worker` process killed with SIGKILL in the middle of a send: its job is not lost, another worker
/// sends it once its lease expires, and it goes out at most once more.
@Suite("Worker crash", .timeLimit(.minutes(2)))
struct WorkerCrashTests {
    @Test("killed mid-send: another worker sends it after the lease, at most once more")
    func killedMidSend() async throws {
        try await withRedisClient { client, server in
            let gateway = FakePushGateway()
            let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
            let app = Application(
                router: gateway.router(),
                configuration: ApplicationConfiguration(address: .hostname("127.0.0.1", port: 0)),
                onServerRunning: {
                    portContinuation.yield($0.localAddress?.port ?? 0)
                    portContinuation.finish()
                },
                logger: testLogger("gateway"))
            let gateways = ServiceGroup(
                configuration: ServiceGroupConfiguration(services: [app], logger: testLogger("g")))
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask {
                    defer { portContinuation.finish() }
                    try await gateways.run()
                }
                var iterator = ports.makeAsyncIterator()
                guard let port = await iterator.next() else { throw CrashTestFailure("the gateway did not start") }
                let secret = WebhookSecret.generate()
                try gateway.setSecret(secret.text, for: "crash")
                gateway.script("crash", [.stall(.seconds(8))])  // outlives the killed worker: it never gets an answer
                let shards = ShardMap()
                _ = try await DeviceStore(client: client, keys: UserKeys(shards: shards)).put(
                    userID: "olga", deviceID: "hook",
                    device: Device(
                        platform: .webhook, url: "http://127.0.0.1:\(port)/webhook/crash", secret: secret.text))
                var configuration = DelayQueueConfiguration()
                configuration.leaseMs = 1_500
                let queue = DelayQueue(client: client, configuration: configuration, shards: shards)
                try await queue.prepare()
                let now = Int64(Date().timeIntervalSince1970 * 1_000)
                let payload =
                    #"{"event_id":"\#(now)-0","due_ms":\#(now),"notification_id":"crash1","type":"message","push":{"title":"Hi"}}"#
                _ = try await queue.schedule(
                    QueueJob(
                        id: try JobID(notificationID: "crash1", userID: "olga"), payload: ByteBuffer(string: payload)),
                    inMs: 0)
                var environment = NotifyBinary.cleanEnvironment
                environment["NOTIFY_REDIS_URL"] = "\(server.url)"
                environment["NOTIFY_DELAY_QUEUE_LEASE_MS"] = "1500"
                environment["NOTIFY_PUSH_ALLOW_LOOPBACK"] = "true"
                environment["NOTIFY_HTTP_PORT"] = "0"
                environment["NOTIFY_LOG_LEVEL"] = "error"
                let (process, _) = try NotifyBinary.launch(["worker"], environment: environment)
                defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
                try await gateway.waitForRequests(1, timeout: .seconds(30))
                kill(process.processIdentifier, SIGKILL)
                // Waits for its end without reaping it (Foundation does), so its pid is not reused meanwhile.
                var info = siginfo_t()
                while waitid(P_PID, id_t(process.processIdentifier), &info, WEXITED | WNOWAIT) == -1 && errno == EINTR {
                }
                #expect(gateway.deliveries.isEmpty)
                let survivor = try await PushWorkerService.make(
                    queue: queue, subscriber: nil, configuration: PushWorkerConfiguration(allowLoopback: true),
                    logger: testLogger("survivor"))
                let workers = ServiceGroup(
                    configuration: ServiceGroupConfiguration(services: [survivor], logger: testLogger("w")))
                tasks.addTask { try await workers.run() }
                try await gateway.waitForDeliveries(1, timeout: .seconds(30))
                #expect(gateway.requestsReceived == 2, "sent once by the killed worker, once more by the survivor")
                #expect(gateway.violations.isEmpty)
                await workers.triggerGracefulShutdown()
                await gateways.triggerGracefulShutdown()
                try await tasks.waitForAll()
            }
        }
    }
}

struct CrashTestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
