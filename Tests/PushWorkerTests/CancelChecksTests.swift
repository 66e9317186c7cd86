import Synchronization
import Testing

@testable import PushWorker

@Suite("Cancel checks shared by a job's devices", .timeLimit(.minutes(1)))
struct CancelChecksTests {
    /// A check that answers only when released, counting how often it was asked.
    final class HeldCheck: Sendable {
        let calls = Mutex(0)
        let release = AsyncStream<Result<Bool, any Error>>.makeStream()

        func check() async throws -> Bool {
            self.calls.withLock { $0 += 1 }
            var answers = self.release.stream.makeAsyncIterator()
            guard let answer = await answers.next() else { throw CancellationError() }
            return try answer.get()
        }
    }

    struct CheckFailed: Error {}

    @Test("sends that ask while a check is on its way wait for its answer instead of asking again")
    func concurrentAskersShareOneCheck() async throws {
        let checks = CancelChecks(count: 1, reuse: .seconds(60))
        let held = HeldCheck()
        try await withThrowingTaskGroup(of: Bool?.self) { group in
            group.addTask { await checks.mayProceed(0, check: held.check) }
            while held.calls.withLock({ $0 }) == 0 { await Task.yield() }
            for _ in 0..<9 { group.addTask { await checks.mayProceed(0, check: held.check) } }
            while checks.waiting(0) < 9 { await Task.yield() }
            held.release.continuation.yield(.success(true))
            var answers: [Bool?] = []
            for try await answer in group { answers.append(answer) }
            #expect(answers == Array(repeating: true, count: 10))
        }
        #expect(held.calls.withLock { $0 } == 1)
        #expect(await checks.mayProceed(0, check: held.check) == true, "a recent answer serves a later send")
        #expect(held.calls.withLock { $0 } == 1)
        #expect(checks.flags.withLock { $0 } == [false])
    }

    @Test("a cancel answers every waiting send and marks the member; a failure answers nil and is asked again")
    func cancelAndFailure() async throws {
        let checks = CancelChecks(count: 2, reuse: .seconds(60))
        let held = HeldCheck()
        async let first = checks.mayProceed(1, check: held.check)
        while held.calls.withLock({ $0 }) == 0 { await Task.yield() }
        async let second = checks.mayProceed(1, check: held.check)
        while checks.waiting(1) < 1 { await Task.yield() }
        held.release.continuation.yield(.success(false))
        #expect(await first == false)
        #expect(await second == false)
        #expect(checks.flags.withLock { $0 } == [false, true])

        let failing = HeldCheck()
        async let third = checks.mayProceed(0, check: failing.check)
        while failing.calls.withLock({ $0 }) == 0 { await Task.yield() }
        async let fourth = checks.mayProceed(0, check: failing.check)
        while checks.waiting(0) < 1 { await Task.yield() }
        failing.release.continuation.yield(.failure(CheckFailed()))
        #expect(await third == nil)
        #expect(await fourth == nil)
        failing.release.continuation.yield(.success(true))
        #expect(await checks.mayProceed(0, check: failing.check) == true, "a failed check is not reused")
        #expect(failing.calls.withLock { $0 } == 2)
        #expect(checks.flags.withLock { $0 } == [false, true])
    }

    @Test("past the reuse window a send asks again, and the older check still answers its own waiters")
    func staleChecksAreAskedAgain() async throws {
        let clock = Mutex(ContinuousClock.now)
        let checks = CancelChecks(count: 1, reuse: .milliseconds(5), now: { clock.withLock { $0 } })
        let old = HeldCheck()
        async let first = checks.mayProceed(0, check: old.check)
        while old.calls.withLock({ $0 }) == 0 { await Task.yield() }
        async let joined = checks.mayProceed(0, check: old.check)
        while checks.waiting(0) < 1 { await Task.yield() }
        clock.withLock { $0 += .milliseconds(6) }
        let fresh = HeldCheck()
        fresh.release.continuation.yield(.success(true))
        #expect(await checks.mayProceed(0, check: fresh.check) == true)
        #expect(fresh.calls.withLock { $0 } == 1, "a check asked 6 ms ago does not serve this send")
        clock.withLock { $0 += .milliseconds(6) }
        fresh.release.continuation.yield(.success(true))
        #expect(await checks.mayProceed(0, check: fresh.check) == true)
        #expect(fresh.calls.withLock { $0 } == 2, "an answer 6 ms old does not serve this send")
        // The older check, on another connection, saw a cancel that the newer ones did not yet.
        old.release.continuation.yield(.success(false))
        #expect(await first == false)
        #expect(await joined == false)
        #expect(old.calls.withLock { $0 } == 1)
        #expect(
            await checks.mayProceed(0, check: fresh.check) == false, "a cancel seen once is final, however recent a yes"
        )
        #expect(fresh.calls.withLock { $0 } == 2)
        #expect(checks.flags.withLock { $0 } == [true])
    }
}
