import Dispatch
import Foundation
import NotifyTestSupport

/// Drives `ws_driver.py`, a WebSocket client built on Python's `websockets` (not our code), one JSON command per
/// line; every answer is the JSON object the driver printed. With `script: "browser_driver.py"` it drives headless
/// Chromium the same way.
final class WebSocketDriver: Sendable {
    private let process: Process
    private let input: FileHandle
    private let lines: LineReader

    init(script name: String = "ws_driver.py") throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(name)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-u", script.path]
        let stdin = Pipe()
        let stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        try process.run()
        self.process = process
        self.input = stdin.fileHandleForWriting
        self.lines = LineReader(stdout.fileHandleForReading)
    }

    deinit {
        try? self.input.close()
        if self.process.isRunning { self.process.terminate() }
    }

    /// Sends one command and returns the driver's answer. The read blocks: it runs on this driver's own queue, not
    /// on a pool that the other tests' drivers (or NIO) share.
    func run(_ command: [String: Any]) async throws -> [String: Any] {
        let data = try JSONSerialization.data(withJSONObject: command)
        try self.input.write(contentsOf: data + Data("\n".utf8))
        let lines = self.lines
        // Every op of the driver answers within its own timeout (at most 15 s): 120 s means the driver is stuck.
        let line = try await Deadline.blocking(
            on: lines.queue, seconds: 120, "the driver's answer to \(command["op"] ?? "?")"
        ) {
            try lines.next()
        }
        guard let answer = try JSONSerialization.jsonObject(with: line) as? [String: Any] else {
            throw DriverFailure("the driver answered no object: \(String(decoding: line, as: UTF8.self))")
        }
        if let error = answer["error"] as? String { throw DriverFailure("driver: \(error)") }
        return answer
    }

    // MARK: Commands

    /// Opens the socket; `maxQueue` is how many messages the client buffers before it stops reading the socket,
    /// `receiveBuffer` (bytes) a fixed kernel receive buffer instead of an autotuned one.
    func connect(
        _ url: String, subprotocols: [String]? = ["notify.v1"], headers: [String: String] = [:], maxQueue: Int = 16,
        receiveBuffer: Int? = nil
    ) async throws -> [String: Any] {
        var command: [String: Any] = ["op": "connect", "url": url, "headers": headers, "max_queue": maxQueue]
        if let receiveBuffer { command["rcvbuf"] = receiveBuffer }
        if let subprotocols { command["subprotocols"] = subprotocols }
        return try await self.run(command)
    }

    func send(_ text: String) async throws {
        _ = try await self.run(["op": "send", "text": text])
    }

    func send(json object: [String: Any]) async throws {
        let data = try JSONSerialization.data(withJSONObject: object)
        try await self.send(String(decoding: data, as: UTF8.self))
    }

    /// The next message as a JSON object; fails on a close or a timeout.
    func receive(timeout: Double = 10) async throws -> [String: Any] {
        let answer = try await self.run(["op": "recv", "timeout": timeout])
        guard let text = answer["text"] as? String else { throw DriverFailure("no message: \(answer)") }
        guard let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            throw DriverFailure("not a JSON object: \(text)")
        }
        return object
    }

    /// Reads until the server closes; returns the close code and reason it sent.
    func closeReceived(timeout: Double = 15) async throws -> (code: Int?, reason: String?) {
        while true {
            let answer = try await self.run(["op": "recv", "timeout": timeout])
            if answer["closed"] as? Bool == true {
                return (answer["code"] as? Int, answer["reason"] as? String)
            }
            if answer["timeout"] as? Bool == true { throw DriverFailure("the server did not close the socket") }
        }
    }
}

struct DriverFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Lines of a pipe, read a chunk at a time; used only on its own serial `queue`.
final class LineReader: @unchecked Sendable {
    let queue = DispatchQueue(label: "notify.test.driver")
    private let handle: FileHandle
    private var buffer = Data()

    init(_ handle: FileHandle) {
        self.handle = handle
    }

    func next() throws -> Data {
        while true {
            if let newline = self.buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = self.buffer[self.buffer.startIndex..<newline]
                self.buffer.removeSubrange(self.buffer.startIndex...newline)
                return Data(line)
            }
            // Whatever the pipe has now (read(upToCount:) would wait for the whole count).
            let chunk = self.handle.availableData
            guard !chunk.isEmpty else { throw DriverFailure("the driver exited") }
            self.buffer.append(chunk)
        }
    }
}
