import Configuration
import Foundation
import Logging
import NotifyCore
import RedisClient

/// The Redis a command talks to: the configured one (`NOTIFY_REDIS_URL`), or, for `dev` and `bench`, a
/// `redis-server` of its own when none is configured.
struct RedisProvision {
    let configuration: RedisClientConfiguration
    /// Set when we started the server; stop it on exit.
    let localServer: LocalRedisServer?

    /// - Parameters:
    ///   - startLocalIfUnset: start a redis-server of our own when no URL is configured (`dev`, `bench`).
    ///   - preferDevServer: when no URL is configured, use the one a running `notify dev` published (ops commands).
    static func resolve(
        config: ConfigReader, startLocalIfUnset: Bool, preferDevServer: Bool = false, logger: Logger
    ) async throws -> RedisProvision {
        let scoped = config.scoped(to: "redis")
        var configuration = try RedisClientConfiguration(config: scoped)
        let configured = scoped.string(forKey: "url", isSecret: true) != nil
        if !configured, preferDevServer, let devURL = DevState.redisURL() {
            configuration.url = try RedisURL(devURL)
            logger.notice("using the Redis of the running notify dev", metadata: ["redis.url": "\(configuration.url)"])
        }
        guard !configured, startLocalIfUnset else {
            return RedisProvision(configuration: configuration, localServer: nil)
        }
        let server = try await LocalRedisServer.start(extraArguments: ["--appendonly", "yes"])
        configuration.url = server.url
        logger.info(
            "started a local redis-server",
            metadata: ["redis.url": "\(server.url)", "redis.dir": "\(server.directory.path)"])
        return RedisProvision(configuration: configuration, localServer: server)
    }

    func stop() {
        self.localServer?.stop()
    }
}
