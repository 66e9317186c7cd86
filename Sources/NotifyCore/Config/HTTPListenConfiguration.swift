import Configuration

/// Where an HTTP server listens.
public struct HTTPListenConfiguration: Sendable {
    /// Interface to bind; `127.0.0.1` by default so nothing is exposed by accident, `0.0.0.0` for all.
    public var host: String
    /// TCP port; 0 picks a free one (printed at start).
    public var port: Int
    /// When set, `/metrics`, `/healthz` and `/readyz` are served on this port (same host) instead of the main one,
    /// so they can stay on an internal network.
    public var opsPort: Int?

    public init(host: String = "127.0.0.1", port: Int = 8080, opsPort: Int? = nil) {
        self.host = host
        self.port = port
        self.opsPort = opsPort
    }

    /// Reads `host` and `port` from `config` (scoped, e.g. to `http`).
    public init(config: ConfigReader, defaultPort: Int = 8080) throws(NotifyConfigError) {
        let port = config.int(forKey: "port", default: defaultPort)
        guard (0...65535).contains(port) else { throw NotifyConfigError("http port \(port) is out of range") }
        let opsPort = config.int(forKey: "opsPort")
        if let opsPort, !(0...65535).contains(opsPort) {
            throw NotifyConfigError("http ops port \(opsPort) is out of range")
        }
        self.init(host: config.string(forKey: "host", default: "127.0.0.1"), port: port, opsPort: opsPort)
    }
}
