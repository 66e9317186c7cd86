import Configuration
import Foundation
import NotifyCore
import RedisClient
import Testing

@Suite("Configuration", .timeLimit(.minutes(3)))
struct ConfigTests {
    /// Writes `json` to a temporary file and returns its path.
    private func configFile(_ json: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("notify-\(UUID().uuidString).json")
            .path
        try Data(json.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test("environment variables override the file, which overrides defaults")
    func precedence() async throws {
        let path = try configFile(#"{"redis": {"url": "redis://file-host:7000/2", "maxConnections": 9}}"#)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let environment = ["NOTIFY_REDIS_MAX_CONNECTIONS": "3", "NOTIFY_REDIS_COMMAND_TIMEOUT_MS": "750"]
        let config = try await NotifyConfigLoader.reader(filePath: path, environment: environment)
        let redis = try RedisClientConfiguration(config: config.scoped(to: "redis"))
        #expect(redis.url.host == "file-host" && redis.url.port == 7000 && redis.url.database == 2)
        #expect(redis.maxConnections == 3)
        #expect(redis.commandTimeoutMs == 750)
        #expect(redis.acquireTimeoutMs == RedisClientConfiguration().acquireTimeoutMs)
    }

    @Test("every environment variable docs/OPERATIONS.md names is the one the code reads for its key")
    func documentedEnvironmentNames() async throws {
        let docs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("docs/OPERATIONS.md")
        let text = try String(contentsOf: docs, encoding: .utf8)
        var checked = 0
        for line in text.split(separator: "\n") where line.hasPrefix("| `") {
            let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count >= 2, cells[1].hasPrefix("`NOTIFY_"), cells[0].hasPrefix("`") else { continue }
            let key = String(cells[0].dropFirst().dropLast())
            let variable = String(cells[1].dropFirst().dropLast())
            let config = try await NotifyConfigLoader.reader(environment: [variable: "documented-value"])
            #expect(
                config.string(forKey: ConfigKey(key), isSecret: true) == "documented-value",
                "\(variable) does not set \(key)")
            checked += 1
        }
        #expect(checked > 40, "the configuration table was not found")
    }

    @Test("the config file can be named by NOTIFY_CONFIG_FILE")
    func fileFromEnvironment() async throws {
        let path = try configFile(#"{"http": {"port": 9191}}"#)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let config = try await NotifyConfigLoader.reader(environment: ["NOTIFY_CONFIG_FILE": path])
        let http = try HTTPListenConfiguration(config: config.scoped(to: "http"))
        #expect(http.port == 9191 && http.host == "127.0.0.1")
    }

    @Test("a missing config file, a bad Redis URL and an out-of-range port are clear errors")
    func badValues() async throws {
        await #expect(throws: NotifyConfigError.self) {
            try await NotifyConfigLoader.reader(filePath: "/nonexistent/notify.json", environment: [:])
        }
        let badURL = try await NotifyConfigLoader.reader(environment: ["NOTIFY_REDIS_URL": "rediss://secure:6380"])
        let error = #expect(throws: RedisClientError.self) {
            try RedisClientConfiguration(config: badURL.scoped(to: "redis"))
        }
        #expect(error?.code == .invalidURL)
        let badPort = try await NotifyConfigLoader.reader(environment: ["NOTIFY_HTTP_PORT": "70000"])
        #expect(throws: NotifyConfigError.self) { try HTTPListenConfiguration(config: badPort.scoped(to: "http")) }
    }

    @Test("defaults apply when nothing is configured")
    func defaults() async throws {
        let config = try await NotifyConfigLoader.reader(environment: [:])
        let redis = try RedisClientConfiguration(config: config.scoped(to: "redis"))
        #expect(redis.url == RedisURL(host: "127.0.0.1", port: 6379))
        #expect(redis.maxConnections == 4)
        #expect(config.string(forKey: "redis.url") == nil)
    }
}
