import NIOCore
import NIOPosix
import Synchronization

/// Runs the jobs of the tasks that prefer it (SE-0417) on one NIO event loop.
///
/// The process uses NIO's loops as Swift's global executor, which keeps a task on the loop it was started or last
/// resumed from, and AsyncHTTPClient opens a new connection on the loop its request came from. Work that starts
/// from one loop therefore stays there, with every connection it opens: a worker could use one core of several.
/// Tasks spread over the loops with these executors keep every core busy.
public final class EventLoopTaskExecutor: TaskExecutor {
    public let eventLoop: any EventLoop

    public init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    private static let byLoop = Mutex<[ObjectIdentifier: EventLoopTaskExecutor]>([:])

    /// The executor of `eventLoop` for work that should run where a connection's I/O runs (a request's handler,
    /// a stream), or `nil` unless ``EventLoopTaskExecutors/isEnabled``. One per loop, made once.
    public static func preferring(_ eventLoop: any EventLoop) -> EventLoopTaskExecutor? {
        guard EventLoopTaskExecutors.isEnabled else { return nil }
        return Self.byLoop.withLock { executors in
            if let executor = executors[ObjectIdentifier(eventLoop)] { return executor }
            let executor = EventLoopTaskExecutor(eventLoop)
            executors[ObjectIdentifier(eventLoop)] = executor
            return executor
        }
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        self.eventLoop.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }
}

/// The executors of a group's event loops, handed out in turn.
public final class EventLoopTaskExecutors: Sendable {
    private static let enabled = Atomic<Bool>(false)

    /// Whether work is spread over the loops: set by a process that made NIO's loops Swift's global executor
    /// (where tasks would otherwise stay on one loop). Elsewhere Swift's own pool spreads tasks already, and
    /// pinning them to the loops would crowd the threads that carry every connection's I/O.
    public static var isEnabled: Bool {
        get { Self.enabled.load(ordering: .relaxed) }
        set { Self.enabled.store(newValue, ordering: .relaxed) }
    }

    private let executors: [EventLoopTaskExecutor]
    private let counter = Atomic<Int>(0)

    public init(group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.executors = group.makeIterator().map(EventLoopTaskExecutor.init)
    }

    /// The next loop's executor; `nil` unless ``isEnabled``.
    public func next() -> EventLoopTaskExecutor? {
        guard Self.isEnabled else { return nil }
        let turn = self.counter.wrappingAdd(1, ordering: .relaxed).oldValue
        return self.executors[Int(UInt(bitPattern: turn) % UInt(self.executors.count))]
    }
}
