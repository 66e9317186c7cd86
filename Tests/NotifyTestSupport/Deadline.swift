import Dispatch
import Synchronization

/// Waits that a test's time limit cannot end: a blocking read of a child process's pipe, a task that ignores
/// cancellation. Swift Testing cancels a test at its limit and then waits for it to return, so such a wait would hold
/// the whole run; bounded here, it fails the test with `DeadlinePassed` instead (the abandoned work runs on, unseen).
public enum Deadline {
    /// The result of `work`, run on `queue` (it may block there), or `DeadlinePassed` after `seconds`, or
    /// `CancellationError` when the waiting task is cancelled (a test at its time limit). Work given up on still runs
    /// to its end: a line it then reads from a pipe is lost to the next read.
    public static func blocking<T: Sendable>(
        on queue: DispatchQueue, seconds: Double, _ what: String, _ work: @escaping @Sendable () throws -> T
    ) async throws -> T {
        let once = ResumeOnce<T>()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
                once.set(continuation)
                queue.async { once.resume(with: Result { try work() }) }
                DispatchQueue.global().asyncAfter(deadline: .now() + seconds) {
                    once.resume(with: .failure(DeadlinePassed(what: what, seconds: seconds)))
                }
            }
        } onCancel: {
            once.resume(with: .failure(CancellationError()))
        }
    }

    /// `task`'s value, or `DeadlinePassed` after `seconds` (the task is then cancelled and left behind).
    public static func value<T: Sendable>(of task: Task<T, any Error>, seconds: Double, _ what: String)
        async throws -> T
    {
        let once = ResumeOnce<T>()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
                once.set(continuation)
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
        } onCancel: {
            task.cancel()
            once.resume(with: .failure(CancellationError()))
        }
    }
}

public struct DeadlinePassed: Error, CustomStringConvertible {
    public let what: String
    public let seconds: Double
    public var description: String { "\(self.what): nothing within \(self.seconds) s" }

    public init(what: String, seconds: Double) {
        self.what = what
        self.seconds = seconds
    }
}

/// A continuation that the first of several racers resumes; the others are ignored. A result that comes before
/// the continuation is set (a cancellation) is kept and given to it then.
private final class ResumeOnce<T: Sendable>: Sendable {
    private enum State {
        case waiting
        case set(CheckedContinuation<T, any Error>)
        case early(Result<T, any Error>)
        case done
    }

    private let state = Mutex(State.waiting)

    func set(_ continuation: CheckedContinuation<T, any Error>) {
        let early: Result<T, any Error>? = self.state.withLock { state in
            guard case .early(let result) = state else {
                state = .set(continuation)
                return nil
            }
            state = .done
            return result
        }
        if let early { continuation.resume(with: early) }
    }

    func resume(with result: Result<T, any Error>) {
        let continuation: CheckedContinuation<T, any Error>? = self.state.withLock { state in
            switch state {
            case .waiting:
                state = .early(result)
                return nil
            case .set(let continuation):
                state = .done
                return continuation
            case .early, .done:
                return nil
            }
        }
        continuation?.resume(with: result)
    }
}
