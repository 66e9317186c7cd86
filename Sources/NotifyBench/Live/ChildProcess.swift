import Foundation
import Synchronization

/// A child process whose stdout is read line by line as it comes (a thread of its own blocks on the pipe), and
/// whose stdin can be written: how the live benchmark drives its load generator and watches its servers.
final class ChildProcess: Sendable {
    let process: Process
    let lines: AsyncStream<String>
    private let input: Pipe

    init(executable: String, arguments: [String], environment: [String: String]? = nil) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        let output = Pipe()
        let input = Pipe()
        process.standardOutput = output
        process.standardInput = input
        process.standardError = FileHandle.standardError
        try process.run()
        self.process = process
        self.input = input
        let (lines, continuation) = AsyncStream.makeStream(of: String.self)
        self.lines = lines
        let handle = output.fileHandleForReading
        Thread.detachNewThread {
            var pending = Data()
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                pending.append(chunk)
                while let newline = pending.firstIndex(of: 0x0A) {
                    continuation.yield(String(decoding: pending[pending.startIndex..<newline], as: UTF8.self))
                    pending.removeSubrange(pending.startIndex...newline)
                }
            }
            if !pending.isEmpty { continuation.yield(String(decoding: pending, as: UTF8.self)) }
            continuation.finish()
        }
    }

    var pid: Int32 { self.process.processIdentifier }

    func writeLine(_ text: String) {
        self.input.fileHandleForWriting.write(Data((text + "\n").utf8))
    }

    /// Stops the process with `signal` (SIGKILL: nothing of the benchmark's servers needs saving; nginx takes
    /// SIGTERM, so its master stops its workers) and reaps it. `waitpid` here rather than `waitUntilExit`, which
    /// waits on a run loop that an event-loop thread does not turn.
    func kill(_ signal: Int32 = SIGKILL) {
        guard self.process.isRunning else { return }
        _ = Foundation.kill(self.pid, signal)
        var status: Int32 = 0
        _ = waitpid(self.pid, &status, 0)  // ECHILD if Foundation reaped it first: gone either way
    }
}
