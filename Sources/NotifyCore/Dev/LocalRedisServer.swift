import Foundation
import Logging
import RedisClient
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Why a local `redis-server` could not be started or stopped.
public struct LocalRedisServerError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A `redis-server` child process on a free loopback port, with its data in a folder of its own.
///
/// Used by `notify dev`, `notify bench` and the tests, so every one of them runs against a real Redis they own.
/// Stopped with SIGKILL: a child started from a test run can inherit a blocked SIGTERM and ignore it.
public final class LocalRedisServer: Sendable {
    /// The port Redis listens on (127.0.0.1 only).
    public let port: Int
    /// The folder holding the server's data, log and config.
    public let directory: URL
    private let executable: String
    private let arguments: [String]
    private let ownsDirectory: Bool
    private let process: Mutex<Process?>

    /// The URL to reach this server.
    public var url: RedisURL { RedisURL(host: "127.0.0.1", port: self.port) }

    /// The server's process id while it runs (benchmarks read its CPU and memory from `/proc`).
    public var processID: Int32? {
        self.process.withLock { $0.map(\.processIdentifier) }
    }

    private init(port: Int, directory: URL, executable: String, arguments: [String], ownsDirectory: Bool) {
        self.port = port
        self.directory = directory
        self.executable = executable
        self.arguments = arguments
        self.ownsDirectory = ownsDirectory
        self.process = Mutex(nil)
    }

    /// Starts `redis-server` from PATH (or `NOTIFY_REDIS_SERVER_BIN`) and returns once it answers PING.
    ///
    /// - Parameters:
    ///   - extraArguments: more `--option value` pairs for redis-server (e.g. `["--appendonly", "yes"]`).
    ///   - directory: where to keep data; a new temporary folder (removed by ``stop()``) when `nil`.
    public static func start(extraArguments: [String] = [], directory: URL? = nil) async throws -> LocalRedisServer {
        let executable = try Self.findExecutable()
        var lastError: (any Error)?
        for _ in 0..<5 {
            let port = try FreePort.find()
            let folder =
                directory
                ?? FileManager.default.temporaryDirectory
                .appendingPathComponent("notify-redis-\(port)-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let server = LocalRedisServer(
                port: port, directory: folder, executable: executable,
                arguments: Self.baseArguments(port: port, directory: folder) + extraArguments,
                ownsDirectory: directory == nil)
            do {
                try await server.launch()
                return server
            } catch {
                lastError = error
                server.stop()
            }
        }
        throw lastError ?? LocalRedisServerError("redis-server did not start")
    }

    /// Kills the server and starts it again on the same port and folder (data survives as far as its
    /// persistence settings allow).
    public func restart() async throws {
        self.kill()
        try await self.launch()
    }

    /// Kills the server (SIGKILL: no save), waits until it is gone, and removes its folder if it made one.
    public func stop() {
        self.kill()
        if self.ownsDirectory {
            try? FileManager.default.removeItem(at: self.directory)
        }
    }

    /// Kills the server without removing its data, as a crash would.
    public func kill() {
        let process = self.process.withLock { process in
            defer { process = nil }
            return process
        }
        guard let process, process.isRunning else { return }
        _ = Foundation.kill(process.processIdentifier, SIGKILL)
        // Not `waitUntilExit`: it blocks a thread of the caller's (often one of the few that run tasks) until
        // Foundation's monitor thread has noticed. `waitid` with WNOWAIT returns as soon as the process is gone and
        // leaves reaping to Foundation (the zombie keeps its pid from being reused before Foundation reaps it).
        var info = siginfo_t()
        while waitid(P_PID, id_t(process.processIdentifier), &info, WEXITED | WNOWAIT) == -1 && errno == EINTR {}
    }

    // MARK: Internals

    private func launch() async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: self.executable)
        process.arguments = self.arguments
        let null = FileHandle.nullDevice
        process.standardInput = null
        process.standardOutput = null
        process.standardError = null
        try process.run()
        self.process.withLock { $0 = process }
        // Poll until it answers: redis-server has no readiness signal we can await without reading its log.
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            guard process.isRunning else {
                throw LocalRedisServerError(
                    "redis-server exited with status \(process.terminationStatus); see \(self.logPath)")
            }
            if await self.answersPing(as: process.processIdentifier) { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw LocalRedisServerError("redis-server did not answer PING within 10 s; see \(self.logPath)")
    }

    /// Whether our server answers: `INFO server` naming our child's process id, or an error such as NOAUTH when the
    /// default user is off. Another process's Redis on the same port (it won the port, and ours will exit)
    /// does not count.
    private func answersPing(as pid: Int32) async -> Bool {
        var logger = Logger(label: "notify.dev-redis")
        logger.logLevel = .critical
        let client = RedisClient(
            configuration: RedisClientConfiguration(
                url: self.url, maxConnections: 1, acquireTimeoutMs: 200, connectTimeoutMs: 200),
            logger: logger)
        let reply: RedisValue
        do {
            reply = try await client.withConnection { try await $0.sendRaw(RedisCommand("INFO", "server")) }
        } catch let error as RedisClientError where error.message.contains("handshake refused") {
            // It answered the handshake's PING with an error (NOAUTH: the default user is off): it is up.
            await client.shutdown()
            return true
        } catch {
            await client.shutdown()
            return false
        }
        await client.shutdown()
        guard let info = reply.string, reply.errorMessage == nil else { return true }
        return info.split(whereSeparator: \.isNewline).contains { $0 == "process_id:\(pid)" }
    }

    private var logPath: String { self.directory.appendingPathComponent("redis.log").path }

    private static func baseArguments(port: Int, directory: URL) -> [String] {
        [
            "--port", "\(port)", "--bind", "127.0.0.1", "--dir", directory.path,
            "--logfile", directory.appendingPathComponent("redis.log").path,
            "--daemonize", "no", "--save", "", "--appendonly", "no", "--protected-mode", "yes",
        ]
    }

    private static func findExecutable() throws -> String {
        let environment = ProcessInfo.processInfo.environment
        if let explicit = environment["NOTIFY_REDIS_SERVER_BIN"], !explicit.isEmpty { return explicit }
        let path = environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for folder in path.split(separator: ":").map(String.init) + ["/usr/sbin", "/usr/local/sbin"] {
            let candidate = "\(folder)/redis-server"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        throw LocalRedisServerError(
            "redis-server not found on PATH; install it (apt-get install redis-server) or set NOTIFY_REDIS_URL")
    }
}
