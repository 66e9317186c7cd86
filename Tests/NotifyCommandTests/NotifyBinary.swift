import Foundation
import NotifyTestSupport
import Synchronization

/// The `notify` binary as a user runs it: `.build/<config>/notify`, next to the test bundle.
enum NotifyBinary {
    static var url: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("notify")
    }

    /// The process environment without any `NOTIFY_*` variable of the developer's shell.
    static var cleanEnvironment: [String: String] {
        ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("NOTIFY_") }
    }

    /// Runs `notify <arguments>` to completion; `output` is stdout, with stderr too when `withErrors`.
    static func run(
        _ arguments: [String], environment: [String: String] = cleanEnvironment, withErrors: Bool = false
    ) async throws -> (status: Int32, output: String) {
        let (process, output) = try Self.launch(arguments, environment: environment, withErrors: withErrors)
        // A command that never ends would hold the read below past the test's time limit: it is killed instead,
        // and that is an error of its own (a status of 9 would pass for "exited with an error").
        let killed = KilledFlag()
        DispatchQueue.global().asyncAfter(deadline: .now() + 120) {
            guard process.isRunning else { return }
            killed.value.withLock { $0 = true }
            kill(process.processIdentifier, SIGKILL)
        }
        // Reading to the end and waiting block a thread: one of its own, not one of the test process's few
        // cooperative threads, which the tests running beside this one need.
        let handle = output.fileHandleForReading
        let (text, status) = await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                let text = String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
                process.waitUntilExit()
                continuation.resume(returning: (text, process.terminationStatus))
            }
        }
        if killed.value.withLock({ $0 }) {
            throw DeadlinePassed(what: "notify \(arguments.joined(separator: " "))", seconds: 120)
        }
        return (status, text)
    }

    /// Starts `notify <arguments>` and returns at once; its stdout (and stderr when `withErrors`) is `output`.
    static func launch(
        _ arguments: [String], environment: [String: String], withErrors: Bool = false,
        terminationHandler: (@Sendable (Process) -> Void)? = nil
    ) throws -> (process: Process, output: Pipe) {
        let process = Process()
        process.executableURL = Self.url
        process.arguments = arguments
        process.environment = environment
        let output = Pipe()
        process.standardOutput = output
        process.standardError = withErrors ? output : FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        process.terminationHandler = terminationHandler
        try process.run()
        return (process, output)
    }
}

/// Whether `NotifyBinary.run` had to kill the command.
private final class KilledFlag: Sendable {
    let value = Mutex(false)
}
