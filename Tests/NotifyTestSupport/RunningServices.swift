import Logging
import ServiceLifecycle

/// Runs `services` as a service group, waits for the port a listener among them reports through `ports`, runs
/// `body` with it (and a way to start the graceful shutdown, as SIGTERM would), then shuts the group down.
///
/// A group that does not stop within `stopSeconds` of its graceful shutdown fails the test with `DeadlinePassed`
/// (a shutdown that hangs is a bug, and waiting for it would hold the whole test run past every time limit).
public func withRunningServices<T: Sendable>(
    _ services: [any Service], ports: AsyncStream<Int>, portContinuation: AsyncStream<Int>.Continuation,
    logger: Logger, stopSeconds: Double = 60,
    _ body: (_ port: Int, _ shutdown: @escaping @Sendable () async -> Void) async throws -> T
) async throws -> T {
    let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: services, logger: logger))
    let running = Task {
        // A server that fails to start must not leave the caller waiting for its port.
        defer { portContinuation.finish() }
        try await group.run()
    }
    return try await withTaskCancellationHandler {
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else {
            try await Deadline.value(of: running, seconds: stopSeconds, "a service group that did not start")
            throw ServicesDidNotStart()
        }
        let result: Result<T, any Error>
        do {
            result = .success(try await body(port) { await group.triggerGracefulShutdown() })
        } catch {
            result = .failure(error)
        }
        await group.triggerGracefulShutdown()
        do {
            try await Deadline.value(of: running, seconds: stopSeconds, "the services' graceful shutdown")
        } catch {
            // The body's failure is the one to report; a shutdown failure after a passing body is one of its own.
            _ = try result.get()
            throw error
        }
        return try result.get()
    } onCancel: {
        running.cancel()
    }
}

public struct ServicesDidNotStart: Error {}
