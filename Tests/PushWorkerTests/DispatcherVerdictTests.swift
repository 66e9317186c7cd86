import DelayQueue
import NotifyCore
import Testing

@testable import PushWorker

@Suite("A job's result from its devices' outcomes", .timeLimit(.minutes(1)))
struct DispatcherVerdictTests {
    let serverError = ProviderLane.Result.answered(
        .retry(reason: "500 InternalServerError", retryAfterMs: nil, backoff: .apnsServer))

    @Test("coalesced jobs on different attempts: each is judged by its own attempt")
    func perJobAttempts() {
        let outcomes: [(device: String, result: ProviderLane.Result?)] = [
            ("apns a", .answered(.delivered)), ("apns b", self.serverError),
        ]
        let fresh = PushDispatcher.verdict(outcomes, attempt: 1, heldForMs: 0)
        let last = PushDispatcher.verdict(outcomes, attempt: PushBackoff.apnsServer.maxAttempts, heldForMs: 0)
        guard case .retry = fresh else {
            Issue.record("a first attempt that failed on a server error is retried, got \(fresh)")
            return
        }
        guard case .deadLetter(let error) = last else {
            Issue.record("the last attempt's failure is a dead letter, got \(last)")
            return
        }
        #expect(error.contains("after 3 attempts"))
    }

    @Test("a push that fell due in quiet hours counts as held only from their end, not from its due time")
    func quietHoursAreNotHeldTime() throws {
        // Due at 23:00 UTC, quiet 22:00-07:00 UTC: held from 07:00 the next day.
        let due = Int64(1_764_716_400_000)  // 2025-12-02 23:00 UTC
        let message = PushMessage(eventID: "1-0", dueMs: due, notificationID: "n", type: "message")
        let quiet = Preferences(quietHours: Preferences.QuietHours(start: "22:00", end: "07:00", timeZone: "UTC"))
        #expect(PushDispatcher.heldSinceMs(message, preferences: quiet) == due + 8 * 3_600_000)
        #expect(PushDispatcher.heldSinceMs(message, preferences: Preferences()) == due)
    }

    @Test("held back by an open breaker: deferred without an attempt for an hour past due, then it counts")
    func holdsAreBounded() {
        let held: [(device: String, result: ProviderLane.Result?)] = [("webhook a", .held(ms: 30_000))]
        guard case .deferred(let afterMs) = PushDispatcher.verdict(held, attempt: 1, heldForMs: 600_000) else {
            Issue.record("a hold within the hour defers")
            return
        }
        #expect(afterMs >= 30_000)
        let late = PushDispatcher.verdict(held, attempt: 1, heldForMs: PushDispatcher.maxHoldMs + 1)
        guard case .retry(_, let error) = late else {
            Issue.record("a hold past the hour uses an attempt, got \(late)")
            return
        }
        #expect(error.contains("open breaker"))
        let spent = PushDispatcher.verdict(
            held, attempt: PushBackoff.network.maxAttempts, heldForMs: PushDispatcher.maxHoldMs + 1)
        guard case .deadLetter = spent else {
            Issue.record("held past the hour on the last attempt: a dead letter, got \(spent)")
            return
        }
    }

    @Test("delivered and gone devices finish the job; a failed check defers it; a permanent failure dead-letters")
    func endings() {
        #expect(
            PushDispatcher.verdict(
                [("a", .answered(.delivered)), ("b", .answered(.removeDevice(reason: "410")))], attempt: 1,
                heldForMs: 0) == .done)
        // A check without an answer (Redis restarting) defers without an attempt; past the hour it counts.
        guard
            case .deferred(let afterMs) = PushDispatcher.verdict(
                [("a", .answered(.delivered)), ("b", nil)], attempt: 1, heldForMs: 0)
        else {
            Issue.record("a failed cancel check defers the job")
            return
        }
        #expect((1_000...2_000).contains(afterMs))
        #expect(
            PushDispatcher.verdict(
                [("a", .answered(.delivered)), ("b", nil)], attempt: 1, heldForMs: PushDispatcher.maxHoldMs + 1)
                == .retry(afterMs: nil, error: "the cancel check failed for over an hour past due"))
        guard
            case .deadLetter = PushDispatcher.verdict(
                [("a", .answered(.delivered)), ("b", .answered(.deadLetter(reason: "400 BadDeviceToken")))],
                attempt: 1, heldForMs: 0)
        else {
            Issue.record("a permanent failure dead-letters the job, for a replay")
            return
        }
    }
}
