import Configuration
import NotifyCore

/// Where the Plexer listens: `plexer.host` (default: `http.host`) and `plexer.port` (default: the HTTP port + 1,
/// so 8081; a free port when the HTTP port is 0).
enum PlexerListen {
    static func configuration(_ config: ConfigReader) throws(NotifyConfigError) -> HTTPListenConfiguration {
        let http = try HTTPListenConfiguration(config: config.scoped(to: "http"))
        let port = config.int(forKey: "plexer.port", default: http.port == 0 ? 0 : http.port + 1)
        guard (0...65535).contains(port) else { throw NotifyConfigError("plexer.port \(port) is out of range") }
        return HTTPListenConfiguration(host: config.string(forKey: "plexer.host", default: http.host), port: port)
    }
}
