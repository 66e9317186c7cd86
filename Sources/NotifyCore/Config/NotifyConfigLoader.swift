import Configuration
import Foundation
import SystemPackage

/// Builds the configuration reader every `notify` command uses.
///
/// Precedence, highest first: environment variables with the `NOTIFY_` prefix (`redis.url` ↔
/// `NOTIFY_REDIS_URL`, `delayQueue.leaseMs` ↔ `NOTIFY_DELAY_QUEUE_LEASE_MS`), then the optional JSON config file,
/// then each component's defaults.
public enum NotifyConfigLoader {
    /// The environment variable that names the JSON config file when `--config` is not given.
    public static let fileVariable = "NOTIFY_CONFIG_FILE"

    /// Makes the reader.
    ///
    /// - Parameters:
    ///   - filePath: a JSON config file; falls back to `NOTIFY_CONFIG_FILE`; none when both are absent.
    ///   - environment: the variables to read (the process environment by default; tests pass their own).
    public static func reader(
        filePath: String? = nil,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) async throws -> ConfigReader {
        let variables = EnvironmentVariablesProvider(
            environmentVariables: environment,
            secretsSpecifier: .dynamic { name, _ in
                let upper = name.uppercased()
                return upper.contains("PASSWORD") || upper.contains("SECRET") || upper.contains("KEY")
                    || upper.hasSuffix("_URL")
            }
        ).prefixKeys(with: "notify")
        guard let path = filePath ?? environment[Self.fileVariable], !path.isEmpty else {
            return ConfigReader(provider: variables)
        }
        guard FileManager.default.fileExists(atPath: path) else {
            throw NotifyConfigError("config file not found: \(path)")
        }
        let file = try await FileProvider<JSONSnapshot>(filePath: FilePath(path))
        return ConfigReader(providers: [variables, file])
    }
}

/// A configuration that cannot be used, with what to fix.
public struct NotifyConfigError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
