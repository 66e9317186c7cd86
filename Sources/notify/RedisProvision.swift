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

    static func resolve(config: ConfigReader, startLocalIfUnset: Bool, logger: Logger) async throws -> RedisProvision {
        let scoped = config.scoped(to: "redis")
        var configuration = try RedisClientConfiguration(config: scoped)
        guard scoped.string(forKey: "url", isSecret: true) == nil, startLocalIfUnset else {
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
