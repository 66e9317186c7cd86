import NIOCore
import RedisClient
import Synchronization
import Testing

@testable import NotifyCore

@Suite("Live listener and ticker", .timeLimit(.minutes(1)))
struct LiveListenerTests {
    static func message(_ text: String) -> RedisPubSubMessage {
        RedisPubSubMessage(kind: .channel, channel: "u", pattern: nil, payload: ByteBuffer(string: text))
    }

    static func text(_ item: LiveListener.Item?) -> String {
        switch item {
        case .message(let payload): String(buffer: payload)
        case .tick: "tick"
        case nil: "end"
        }
    }

    @Test("messages come in order, a tick waits behind them, and a full buffer refuses and ends after what it held")
    func orderAndOverflow() async {
        let listener = LiveListener(bufferLimit: 3)
        #expect(listener.receive(Self.message("a")))
        listener.tick()
        listener.tick()  // not doubled
        #expect(listener.receive(Self.message("b")))
        #expect(listener.receive(Self.message("c")))
        #expect(!listener.receive(Self.message("d")))
        listener.end(.overflow)
        #expect(listener.receive(Self.message("e")))  // ignored after the end, not counted as lost twice
        var seen: [String] = []
        for _ in 0..<5 { seen.append(Self.text(await listener.next())) }
        #expect(seen == ["a", "b", "c", "tick", "end"])
        #expect(listener.endReason == .overflow)
    }

    @Test("a waiting reader wakes for a message, a tick, an end, a close and its task's cancellation")
    func wakeUps() async throws {
        for wake in ["message", "tick", "end", "close", "cancel"] {
            let listener = LiveListener(bufferLimit: 8)
            let reader = Task { Self.text(await listener.next()) }
            // The reader may or may not be waiting yet: either way it must get what comes.
            switch wake {
            case "message": _ = listener.receive(Self.message("m"))
            case "tick": listener.tick()
            case "end": listener.end(.disconnected)
            case "close": listener.close()
            default: reader.cancel()
            }
            let expected = ["message": "m", "tick": "tick"][wake] ?? "end"
            #expect(await reader.value == expected, "\(wake)")
        }
    }

    @Test("close drops what was buffered, runs its clean-up once, and a clean-up set after the close runs at once")
    func close() async {
        let listener = LiveListener(bufferLimit: 8)
        let closes = ManagedCounter()
        listener.onClose { closes.increment() }
        _ = listener.receive(Self.message("a"))
        listener.close()
        listener.close()
        #expect(await listener.next() == nil)
        #expect(closes.value == 1 && listener.endReason == nil)
        listener.onClose { closes.increment() }
        #expect(closes.value == 2)
    }

    @Test("push mode: one wake-up per batch, drains in order, a partial drain waits, the end comes after the buffer")
    func pushMode() {
        let listener = LiveListener(bufferLimit: 3)
        let wakes = ManagedCounter()
        #expect(listener.receive(Self.message("a")))  // before push mode: buffered, and the wake comes at once
        listener.wake { wakes.increment() }
        #expect(wakes.value == 1)
        #expect(listener.receive(Self.message("b")))
        listener.tick()
        #expect(wakes.value == 1, "not drained yet: no second wake-up")
        var drained = listener.drain(max: 1)
        #expect(drained.items.map(Self.text) == ["a"] && drained.end == nil)
        drained = listener.drain(max: 10)
        #expect(drained.items.map(Self.text) == ["b", "tick"] && drained.end == nil)
        #expect(listener.receive(Self.message("c")))
        #expect(wakes.value == 2, "drained everything: the next arrival wakes")
        #expect(listener.receive(Self.message("d")) && listener.receive(Self.message("e")))
        #expect(!listener.receive(Self.message("f")), "bounded in push mode too")
        listener.end(.overflow)
        drained = listener.drain(max: 2)
        #expect(drained.items.map(Self.text) == ["c", "d"] && drained.end == nil, "the end waits for the buffer")
        drained = listener.drain(max: 2)
        #expect(drained.items.map(Self.text) == ["e"] && drained.end == .overflow)
        listener.close()
        // Accepted (a refusal would count as an overflow) and dropped.
        #expect(listener.receive(Self.message("g")))
        #expect(listener.drain(max: 10).items.isEmpty)
        #expect(wakes.value == 2, "nothing wakes a closed listener")
    }

    @Test("the ticker ticks each listener at its interval, once at an earlier deadline, and ends all on shutdown")
    func ticker() async {
        let ticker = LiveTicker()
        let start = ContinuousClock.now
        let steady = LiveListener(bufferLimit: 8)
        let expiring = LiveListener(bufferLimit: 8)
        let quiet = LiveListener(bufferLimit: 8)
        ticker.add(steady, schedule: .init(every: .seconds(10)), now: start)
        ticker.add(expiring, schedule: .init(every: .seconds(10), deadline: start + .seconds(3)), now: start)
        ticker.add(quiet, schedule: nil)
        #expect(ticker.count == 3)

        ticker.tickDue(now: start + .seconds(2))
        #expect(!steady.hasPendingTick && !expiring.hasPendingTick && !quiet.hasPendingTick)
        ticker.tickDue(now: start + .seconds(4))
        #expect(expiring.hasPendingTick && !steady.hasPendingTick)
        #expect(await expiring.next() == .tick)
        ticker.tickDue(now: start + .seconds(11))
        #expect(steady.hasPendingTick && !expiring.hasPendingTick, "after its deadline: every 10 s from the tick")
        ticker.tickDue(now: start + .seconds(14))
        #expect(expiring.hasPendingTick && !quiet.hasPendingTick)

        // A deadline already passed when the listener starts: its first tick is at once, not an interval later.
        let late = LiveListener(bufferLimit: 8)
        ticker.add(late, schedule: .init(every: .seconds(10), deadline: start - .seconds(1)))
        ticker.tickDue(now: ContinuousClock.now)
        #expect(late.hasPendingTick)

        ticker.remove(quiet)
        ticker.shutdown()
        #expect(steady.endReason == .shutdown && quiet.endReason == nil && ticker.count == 0)
        let afterShutdown = LiveListener(bufferLimit: 8)
        ticker.add(afterShutdown, schedule: nil)
        #expect(afterShutdown.endReason == .shutdown)
    }
    @Test("streams that start together get their first heartbeats spread over the second half of the interval")
    func spreadHeartbeats() {
        let ticker = LiveTicker()
        let start = ContinuousClock.now
        let listeners = (0..<1_000).map { _ in LiveListener(bufferLimit: 8) }
        // All added at the same instant (a loaded machine could otherwise spread the adds themselves).
        for listener in listeners { ticker.add(listener, schedule: .init(every: .seconds(10)), now: start) }
        ticker.tickDue(now: start + .milliseconds(4_900))
        let tooEarly = listeners.count(where: \.hasPendingTick)
        #expect(tooEarly == 0, "none before half the interval")
        ticker.tickDue(now: start + .seconds(6))
        let early = listeners.count(where: \.hasPendingTick)
        // Uniform over 5-10 s: about 200 of 1,000 by 6 s (more than 300 or fewer than 100 is ~10 standard deviations).
        #expect(early > 100 && early < 300, "\(early) ticked by 6 s")
        ticker.tickDue(now: start + .seconds(10) + .milliseconds(100))
        let ticked = listeners.count(where: \.hasPendingTick)
        #expect(ticked == listeners.count, "all within the interval")
    }
}

/// A counter for closures that must be Sendable.
final class ManagedCounter: Sendable {
    private let count = Mutex(0)
    func increment() { self.count.withLock { $0 += 1 } }
    var value: Int { self.count.withLock { $0 } }
}
