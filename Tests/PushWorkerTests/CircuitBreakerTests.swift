import PushWorker
import Testing

@Suite("Circuit breaker", .timeLimit(.minutes(1)))
struct CircuitBreakerTests {
    @Test("opens after the threshold, holds back until its time, then lets one probe decide")
    func lifecycle() {
        var breaker = CircuitBreaker(failureThreshold: 3, openFor: .seconds(30))
        let start = ContinuousClock.now
        for _ in 1...2 { breaker.recordFailure(now: start) }
        #expect(breaker.allow(now: start).allowed, "two failures do not open it")
        breaker.recordFailure(now: start)
        let held = breaker.allow(now: start + .seconds(10))
        #expect(!held.allowed)
        #expect(held.retryIn == .seconds(20))
        #expect(breaker.metricValue == 1)
        #expect(breaker.allow(now: start + .seconds(31)).allowed, "one probe after the open time")
        #expect(!breaker.allow(now: start + .seconds(31)).allowed, "only one probe at a time")
        #expect(breaker.metricValue == 2)
        breaker.recordFailure(now: start + .seconds(32))
        #expect(!breaker.allow(now: start + .seconds(40)).allowed, "a failed probe opens it again")
        #expect(breaker.allow(now: start + .seconds(63)).allowed)
        breaker.recordSuccess()
        #expect(breaker.metricValue == 0)
        #expect(breaker.allow(now: start + .seconds(63)).allowed)
    }

    @Test("a success resets the count, and a credential fault opens it at once")
    func resetAndTrip() {
        var breaker = CircuitBreaker(failureThreshold: 3, openFor: .seconds(5))
        let now = ContinuousClock.now
        breaker.recordFailure(now: now)
        breaker.recordFailure(now: now)
        breaker.recordSuccess()
        breaker.recordFailure(now: now)
        breaker.recordFailure(now: now)
        #expect(breaker.allow(now: now).allowed)
        breaker.trip(now: now)
        #expect(!breaker.allow(now: now + .seconds(1)).allowed)
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
