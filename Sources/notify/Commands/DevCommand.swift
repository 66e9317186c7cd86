import ArgumentParser
import Configuration
import DelayQueue
import Foundation
import Hummingbird
import Logging
import NotifyAPI
import NotifyCore
import PushWorker
import RedisClient
import ServiceLifecycle
import UnixSignals

/// `notify dev`: every part that exists, in one process, with a Redis of its own unless `NOTIFY_REDIS_URL` is set.
struct DevCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dev",
        abstract: "Run every part in one process (starts its own redis-server unless NOTIFY_REDIS_URL is set)."
    )

    @OptionGroup var options: GlobalOptions

    func run() async throws {
        let setup = try await ProcessSetup.bootstrap(self.options, part: "dev")
        let logger = setup.logger
        let provision = try await RedisProvision.resolve(config: setup.config, startLocalIfUnset: true, logger: logger)
        defer { provision.stop() }
        let redisURL = provision.configuration.url
        // `notify queue …` in another terminal finds the Redis we started without NOTIFY_REDIS_URL. A configured
        // URL is not written down: it may hold a password.
        if provision.localServer != nil {
            DevState.publish(redisURL: "\(redisURL)")
        }
        defer { DevState.clear() }
        try await APIProcess.run(setup: setup, provision: provision, dev: true, withWorker: true, withPlexer: true) {
            bases, credentials, worker in
            let (base, ops) = (bases.api, bases.ops)
            var lines = [
                "notify dev is running",
                "  api:   \(base)/v1/notifications  \(base)/v1/stream  \(base)/v1/inbox  \(base)/v1/ack",
                "  ops:   \(ops)/healthz  \(ops)/readyz  \(ops)/metrics",
                "  redis: \(redisURL)",
            ]
            if let plexer = bases.plexer {
                lines.append("  ws:    \(plexer)  (Plexer, subprotocol notify.v1; see docs/PLEXER_PROTOCOL.md)")
            }
            if let worker {
                lines.append("  push:  worker running (webhooks to this machine allowed: push.allowLoopback)")
                if let key = worker.vapidPublicKey {
                    lines.append(
                        "         Web Push applicationServerKey (VAPID, made up for this run unless configured): \(key)"
                    )
                }
            }
            if let credentials {
                let folder = DevState.redisURLFile.deletingLastPathComponent().path
                lines.append("  development credentials (made up for this run; also in \(folder)):")
                if let key = credentials.backendKey {
                    lines.append("    backend API key: \(key)")
                    DevState.publish(credential: "api-key", value: key)
                }
                if let key = credentials.adminKey {
                    lines.append("    admin key:       \(key)")
                    DevState.publish(credential: "admin-key", value: key)
                }
                for (user, token) in credentials.tokens {
                    lines.append("    token of \(user) (24 h): \(token)")
                    DevState.publish(credential: "token-\(user)", value: token)
                }
            }
            return lines.joined(separator: "\n") + "\nPress Ctrl-C to stop.\n"
        }
    }
}
