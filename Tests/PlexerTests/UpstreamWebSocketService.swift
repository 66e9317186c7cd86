import Foundation
import NotifyTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// `ws_upstream.py`: a WebSocket upstream on Python's `websockets` that checks the Plexer's signed handshake and
/// reports what happened, one JSON line per event (see the script).
final class UpstreamWebSocketService: Sendable {
    static let secret = "ws-upstream-secret-ws-upstream-secret-0123"

    private let process: Process
    /// Closing it (or this process ending) stops the upstream.
    private let input: FileHandle
    private let lines: LineReader
    let port: Int

    /// With `tls` (PEM files of a certificate and its key), the upstream speaks `wss`.
    init(tls: (certificate: String, key: String)? = nil) async throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
            "ws_upstream.py")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-u", script.path, Self.secret] + (tls.map { [$0.certificate, $0.key] } ?? [])
        let stdout = Pipe()
        let stdin = Pipe()
        process.standardOutput = stdout
        process.standardInput = stdin
        try process.run()
        let lines = LineReader(stdout.fileHandleForReading)
        let first = try await Self.read(lines)
        guard let port = first["port"] as? Int else {
            kill(process.processIdentifier, SIGKILL)
            throw DriverFailure("the upstream printed no port: \(first)")
        }
        self.process = process
        self.input = stdin.fileHandleForWriting
        self.lines = lines
        self.port = port
    }

    deinit {
        try? self.input.close()
        // SIGKILL: the test process ignores SIGTERM (service-lifecycle handles it), and its children inherit that.
        if self.process.isRunning { kill(self.process.processIdentifier, SIGKILL) }
    }

    /// The next thing the upstream reports (blocking on the reader's own queue).
    func nextEvent() async throws -> [String: Any] {
        try await Self.read(self.lines)
    }

    private static func read(_ lines: LineReader) async throws -> [String: Any] {
        // Each event the tests wait for follows something they did within seconds.
        let line = try await Deadline.blocking(on: lines.queue, seconds: 30, "the upstream's next event") {
            try lines.next()
        }
        guard let event = try JSONSerialization.jsonObject(with: line) as? [String: Any] else {
            throw DriverFailure("the upstream printed no object")
        }
        return event
    }

    /// The next event named `name`, skipping others.
    func next(_ name: String) async throws -> [String: Any] {
        while true {
            let event = try await self.nextEvent()
            if event["ev"] as? String == name { return event }
        }
    }
}
