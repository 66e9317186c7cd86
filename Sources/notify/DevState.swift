import Foundation

/// Where `notify dev` leaves the URL of the Redis it started, so `notify queue …` in another terminal finds it.
enum DevState {
    static var redisURLFile: URL {
        let folder =
            ProcessInfo.processInfo.environment["NOTIFY_DEV_STATE_DIR"] ?? NSTemporaryDirectory() + "notify-dev"
        return URL(fileURLWithPath: folder).appendingPathComponent("redis.url")
    }

    static func publish(redisURL: String) {
        let file = self.redisURLFile
        try? FileManager.default.createDirectory(
            at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try? Data(redisURL.utf8).write(to: file, options: .atomic)
    }

    /// Writes a development credential (`api-key`, `token-alice`, …) next to the Redis URL, readable by the owner
    /// only, so scripts and the README's curl examples can pick it up.
    static func publish(credential name: String, value: String) {
        let file = self.redisURLFile.deletingLastPathComponent().appendingPathComponent(name)
        try? FileManager.default.createDirectory(
            at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        FileManager.default.createFile(
            atPath: file.path, contents: Data(value.utf8), attributes: [.posixPermissions: 0o600])
    }

    /// Removes everything `notify dev` wrote.
    static func clear() {
        try? FileManager.default.removeItem(at: self.redisURLFile.deletingLastPathComponent())
    }

    static func redisURL() -> String? {
        guard let data = try? Data(contentsOf: self.redisURLFile) else { return nil }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? nil : text
    }
}
