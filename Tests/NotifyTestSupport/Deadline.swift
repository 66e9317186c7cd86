import Dispatch
import Synchronization

/// Waits that a test's time limit cannot end: a blocking read of a child process's pipe, a task that ignores
/// cancellation. Swift Testing cancels a test at its limit and then waits for it to return, so such a wait would hold
/// the whole run; bounded here, it fails the test with `DeadlinePassed` instead (the abandoned work runs on, unseen).
public enum Deadline {
    /// The result of `work`, run on `queue` (it may block there), or `DeadlinePassed` after `seconds`.
    public static func blocking<T: Sendable>(
        on queue: DispatchQueue, seconds: Double, _ what: String, _ work: @escaping @Sendable () throws -> T
    ) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let once = ResumeOnce(continuation)
            queue.async { once.resume(with: Result { try work() }) }
            DispatchQueue.global().asyncAfter(deadline: .now() + seconds) {
                once.resume(with: .failure(DeadlinePassed(what: what, seconds: seconds)))
            }
        }
    }

    /// `task`'s value, or `DeadlinePassed` after `seconds` (the task is then cancelled and left behind).
    public static func value<T: Sendable>(of task: Task<T, any Error>, seconds: Double, _ what: String)
        async throws -> T
    {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let once = ResumeOnce(continuation)
            let timer = Task {
                try await Task.sleep(for: .seconds(seconds))
                task.cancel()
                once.resume(with: .failure(DeadlinePassed(what: what, seconds: seconds)))
            }
            Task {
                let result = await task.result
                timer.cancel()
                once.resume(with: result)
            }
        }
    }
}

public struct DeadlinePassed: Error, CustomStringConvertible {
    public let what: String
    public let seconds: Double
    public var description: String { "\(self.what): nothing within \(self.seconds) s" }
}

/// A continuation that the first of several racers resumes; the others are ignored.
private final class ResumeOnce<T: Sendable>: Sendable {
    private let continuation: Mutex<CheckedContinuation<T, any Error>?>

    init(_ continuation: CheckedContinuation<T, any Error>) {
        self.continuation = Mutex(continuation)
    }

    func resume(with result: Result<T, any Error>) {
        let continuation = self.continuation.withLock { stored in
            defer { stored = nil }
            return stored
        }
        continuation?.resume(with: result)
    }
}
