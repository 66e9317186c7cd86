import Logging
import ServiceLifecycle

/// Runs `services` as a service group, waits for the port a listener among them reports through `ports`, runs
/// `body` with it (and a way to start the graceful shutdown, as SIGTERM would), then shuts the group down.
public func withRunningServices<T: Sendable>(
    _ services: [any Service], ports: AsyncStream<Int>, portContinuation: AsyncStream<Int>.Continuation,
    logger: Logger, _ body: (_ port: Int, _ shutdown: @escaping @Sendable () async -> Void) async throws -> T
) async throws -> T {
    let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: services, logger: logger))
    return try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask {
            // A server that fails to start must not leave the caller waiting for its port.
            defer { portContinuation.finish() }
            try await group.run()
        }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { throw ServicesDidNotStart() }
        do {
            let result = try await body(port) { await group.triggerGracefulShutdown() }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
            return result
        } catch {
            await group.triggerGracefulShutdown()
            try? await tasks.waitForAll()
            throw error
        }
    }
}

public struct ServicesDidNotStart: Error {}
