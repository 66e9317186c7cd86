import Foundation
import RedisClient

/// Runs `redis-benchmark` (the C tool shipped with Redis) and reads its throughput: the physical limit our client
/// is compared with, since it pre-formats commands and decodes no replies.
struct RedisBenchmarkTool {
    var url: RedisURL
    var connections: Int
    var requests: Int

    /// Runs one command at pipeline depth `depth` and returns requests per second.
    ///
    /// - Parameter keyspace: range of `__rand_int__` (redis-benchmark's `-r`).
    func run(depth: Int, command: [String], keyspace: Int = 100_000_000) throws -> Double {
        var arguments = [
            "-h", self.url.host, "-p", "\(self.url.port)", "-c", "\(self.connections)", "-n", "\(self.requests)",
            "-P", "\(depth)", "-r", "\(keyspace)", "--csv",
        ]
        if self.url.database != 0 { arguments += ["--dbnum", "\(self.url.database)"] }
        if let user = self.url.user { arguments += ["--user", user] }
        if let password = self.url.password { arguments += ["-a", password] }
        let output = try Self.execute(arguments + command)
        // CSV: a header line, then "<test>","<rps>",...
        guard let line = output.split(separator: "\n").last(where: { !$0.hasPrefix("\"test\"") }),
            let field = line.split(separator: ",").dropFirst().first,
            let rps = Double(field.trimmingCharacters(in: CharacterSet(charactersIn: "\"")))
        else {
            throw BenchError("could not read redis-benchmark output: \(output.prefix(200))")
        }
        return rps
    }

    private static func execute(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = try Self.executable()
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw BenchError("redis-benchmark exited with status \(process.terminationStatus)")
        }
        return String(decoding: data, as: UTF8.self)
    }

    private static func executable() throws -> URL {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for folder in path.split(separator: ":").map(String.init) where access("\(folder)/redis-benchmark", X_OK) == 0 {
            return URL(fileURLWithPath: "\(folder)/redis-benchmark")
        }
        throw BenchError("redis-benchmark not found on PATH (Debian package redis-tools)")
    }
}

/// A benchmark that could not run.
public struct BenchError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
