import ArgumentParser
import Configuration
import DelayQueue
import Foundation
import Hummingbird
import NotifyCore
import PushWorker
import RedisClient
import ServiceLifecycle
import UnixSignals

/// `notify worker`: sends due pushes through the configured gateways. Run as many as needed: they split the
/// queue's shards among themselves, and none sends a job another holds.
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run a push worker (needs NOTIFY_REDIS_URL and the push.* gateway settings).")
    @OptionGroup var options: GlobalOptions

    func run() async throws {
        let setup = try await ProcessSetup.bootstrap(self.options, part: "worker")
        let logger = setup.logger
        let provision = try await RedisProvision.resolve(config: setup.config, startLocalIfUnset: false, logger: logger)
        defer { provision.stop() }
        let redis = RedisClient(configuration: provision.configuration, logger: logger)
        let queue = DelayQueue(
            client: redis, configuration: DelayQueueConfiguration(config: setup.config.scoped(to: "delayQueue")),
            shards: try ShardMap(config: setup.config))
        try await queue.prepare()
        let subscriber = RedisSubscriber(configuration: provision.configuration, logger: logger)
        let worker = try await PushWorkerService.make(
            queue: queue, subscriber: subscriber,
            configuration: PushWorkerConfiguration(config: setup.config.scoped(to: "push")), logger: logger)
        let http = try HTTPListenConfiguration(config: setup.config.scoped(to: "http"))
        let router = Router()
        OpsRoutes(registry: setup.registry) {
            ReadinessReport(checks: [
                await ReadinessReport.redis(redis), await ReadinessReport.delayQueue(queue),
                ReadinessReport.subscriber(subscriber),
            ])
        }.register(on: router)
        let port = http.opsPort ?? http.port
        let ops = Application(
            router: router,
            configuration: ApplicationConfiguration(
                address: .hostname(http.host, port: port), serverName: "notify-worker"),
            onServerRunning: { channel in
                let url = "http://\(http.host):\(channel.localAddress?.port ?? port)"
                FileHandle.standardOutput.write(Data("notify worker is running (ops endpoints on \(url))\n".utf8))
            },
            logger: logger)
        try await ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [redis, subscriber, worker, ops], gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger)
        ).run()
    }
}
