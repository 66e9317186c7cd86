import PushWorker
import Testing

@Suite("Circuit breaker", .timeLimit(.minutes(1)))
struct CircuitBreakerTests {
    @Test("opens after the threshold, holds back until its time, then lets one probe decide")
    func lifecycle() {
        var breaker = CircuitBreaker(failureThreshold: 3, openForMs: 30_000)
        let start: Int64 = 1_000_000
        for _ in 1...2 { breaker.recordFailure(nowMs: start) }
        #expect(breaker.allow(nowMs: start).allowed, "two failures do not open it")
        breaker.recordFailure(nowMs: start)
        let held = breaker.allow(nowMs: start + 10000)
        #expect(!held.allowed)
        #expect(held.retryInMs == 20_000)
        #expect(breaker.metricValue == 1)
        #expect(breaker.allow(nowMs: start + 31000).allowed, "one probe after the open time")
        #expect(!breaker.allow(nowMs: start + 31000).allowed, "only one probe at a time")
        #expect(breaker.metricValue == 2)
        breaker.recordFailure(nowMs: start + 32000)
        #expect(!breaker.allow(nowMs: start + 40000).allowed, "a failed probe opens it again")
        #expect(breaker.allow(nowMs: start + 63000).allowed)
        breaker.recordSuccess()
        #expect(breaker.metricValue == 0)
        #expect(breaker.allow(nowMs: start + 63000).allowed)
    }

    @Test("a success resets the count, and a credential fault opens it at once")
    func resetAndTrip() {
        var breaker = CircuitBreaker(failureThreshold: 3, openForMs: 5_000)
        let now: Int64 = 1_000_000
        breaker.recordFailure(nowMs: now)
        breaker.recordFailure(nowMs: now)
        breaker.recordSuccess()
        breaker.recordFailure(nowMs: now)
        breaker.recordFailure(nowMs: now)
        #expect(breaker.allow(nowMs: now).allowed)
        breaker.trip(nowMs: now)
        breaker.recordSuccess()
        #expect(!breaker.allow(nowMs: now + 1000).allowed, "an answer to an earlier request does not close it")
    }
}

@Suite("Concurrency limit", .timeLimit(.minutes(1)))
struct ConcurrencyLimitTests {
    @Test("never more holders than the limit, and every waiter gets its turn")
    func bounded() async {
        let limit = ConcurrencyLimit(limit: 3)
        let counter = Counter()
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<50 {
                group.addTask {
                    await limit.withPermit {
                        await counter.enter()
                        await Task.yield()
                        await counter.leave()
                    }
                }
            }
        }
        #expect(await counter.peak <= 3)
        #expect(await counter.total == 50)
    }

    actor Counter {
        var current = 0
        var peak = 0
        var total = 0
        func enter() {
            self.current += 1
            self.total += 1
            self.peak = max(self.peak, self.current)
        }
        func leave() { self.current -= 1 }
    }
}
