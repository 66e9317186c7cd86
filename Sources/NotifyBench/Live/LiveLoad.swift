import Foundation
import NIOCore

/// What one load-generator run measured (printed as JSON on the generator's last line).
public struct LiveLoadReport: Codable, Sendable {
    /// Events the generator meant to post, and those the server accepted (2xx).
    public var planned: Int
    public var accepted: Int
    public var postErrors: Int
    /// Accepted events that reached their stream, once or more; more than once; on the wrong user's stream.
    public var received: Int
    public var duplicates: Int
    public var misrouted: Int
    /// Streams that ended early because the server found them too slow (Notify's `overflow`).
    public var overflows: Int
    public var streamsLost: Int
    /// Events per second actually posted while sending.
    public var postedPerSecond: Double
    /// From just before the POST to the parsed event, in milliseconds.
    public var p50Ms: Double
    public var p99Ms: Double
    public var maxMs: Double
    /// The generator's own CPU over the whole run, in seconds, and the sending phase's length.
    public var generatorCPUSeconds: Double
    public var sendingSeconds: Double
    /// From the first connect to every stream ready (authenticated and resumed on Notify; subscribed on nchan).
    public var readySeconds: Double

    public var lost: Int { self.accepted - self.received }
}

/// The generator's state: every stream's arrivals, the publishers' queue and the pacing. Confined to the
/// generator's single event loop (every method runs there), hence unchecked.
final class LiveLoad: @unchecked Sendable {
    let loop: any EventLoop
    let streams: Int
    let planned: Int
    /// The user each event goes to.
    let targets: [Int32]
    private(set) var arrivals: [UInt8]
    private(set) var latenciesNs: [UInt64] = []
    private(set) var duplicates = 0
    private(set) var misrouted = 0
    private(set) var overflows = 0
    private(set) var streamsLost = 0
    private(set) var accepted = 0
    private(set) var postErrors = 0
    private(set) var received = 0

    private var readyStreams = 0
    private let allReady: EventLoopPromise<Void>
    private var idle: [PublishHandler] = []
    private var backlog: [Int] = []
    private var backlogHead = 0
    private(set) var scheduled = 0
    private var answered = 0
    private let allAnswered: EventLoopPromise<Void>
    private let allReceived: EventLoopPromise<Void>
    private(set) var firstPostNs: UInt64 = 0
    private(set) var lastPostNs: UInt64 = 0
    let target: LiveTarget

    init(loop: any EventLoop, streams: Int, targets: [Int32], target: LiveTarget) {
        self.loop = loop
        self.streams = streams
        self.targets = targets
        self.planned = targets.count
        self.arrivals = [UInt8](repeating: 0, count: targets.count)
        self.target = target
        self.allReady = loop.makePromise()
        self.allAnswered = loop.makePromise()
        self.allReceived = loop.makePromise()
        if streams == 0 { self.allReady.succeed() }
        if targets.isEmpty {
            self.allAnswered.succeed()
            self.allReceived.succeed()
        }
    }

    var ready: EventLoopFuture<Void> { self.allReady.futureResult }
    var answeredAll: EventLoopFuture<Void> { self.allAnswered.futureResult }
    var receivedAll: EventLoopFuture<Void> { self.allReceived.futureResult }

    // MARK: Streams

    func streamReady() {
        self.readyStreams += 1
        if self.readyStreams == self.streams { self.allReady.succeed() }
    }

    func streamFailed(_ reason: String) {
        self.streamsLost += 1
        self.allReady.fail(BenchError("a stream failed before it was ready: \(reason)"))
    }

    /// The generator is closing its streams: their ends are not losses.
    var finishing = false

    func streamEnded(overflow: Bool) {
        if overflow {
            self.overflows += 1
        } else if !self.finishing {
            self.streamsLost += 1
        }
    }

    func arrived(event: Int, on user: Int, stampNs: UInt64, nowNs: UInt64) {
        guard event >= 0, event < self.planned else { return }
        if self.targets[event] != Int32(user) { self.misrouted += 1 }
        if self.arrivals[event] > 0 {
            self.duplicates += 1
            return
        }
        self.arrivals[event] = 1
        self.received += 1
        self.latenciesNs.append(nowNs &- stampNs)
        self.checkAllReceived()
    }

    // MARK: Publishing

    /// Queues events up to `count` (the pacing's running total) and hands them to idle connections.
    func schedule(upTo count: Int) {
        while self.scheduled < min(count, self.planned) {
            self.backlog.append(self.scheduled)
            self.scheduled += 1
        }
        self.dispatch()
    }

    func connectionIdle(_ connection: PublishHandler) {
        self.idle.append(connection)
        self.dispatch()
    }

    func answered(ok: Bool) {
        if ok { self.accepted += 1 } else { self.postErrors += 1 }
        self.answered += 1
        if self.answered == self.planned { self.allAnswered.succeed() }
        self.checkAllReceived()
    }

    /// Every accepted event arrived once every answer is in (refused events never arrive).
    private func checkAllReceived() {
        if self.received == self.planned || (self.answered == self.planned && self.received >= self.accepted) {
            self.allReceived.succeed()
        }
    }

    /// Opens a new publishing connection in place of a lost one (set by the generator).
    var replacePublisher: () -> Void = {}

    func connectionLost(_ connection: PublishHandler, holding event: Int?) {
        self.idle.removeAll { $0 === connection }
        if event != nil { self.answered(ok: false) }
        if !self.finishing { self.replacePublisher() }
    }

    private func dispatch() {
        while self.backlogHead < self.backlog.count, let connection = self.idle.popLast() {
            let event = self.backlog[self.backlogHead]
            self.backlogHead += 1
            let now = DispatchTime.now().uptimeNanoseconds
            if self.firstPostNs == 0 { self.firstPostNs = now }
            self.lastPostNs = now
            let user = Int(self.targets[event])
            connection.post(
                event: event, head: self.target.postHead(user: user),
                body: self.target.postBody(event: event, user: user, stampNs: now))
        }
        if self.backlogHead > 4_096, self.backlogHead * 2 > self.backlog.count {
            self.backlog.removeFirst(self.backlogHead)
            self.backlogHead = 0
        }
    }
}
