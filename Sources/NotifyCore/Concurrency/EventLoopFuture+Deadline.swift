import NIOCore

extension EventLoopFuture where Value == Void {
    /// This future, or `error` if it has not completed within `timeout` (a write the socket does not take: the
    /// reader is too slow). The write itself is not cancelled.
    public func failing(after timeout: TimeAmount, with error: any Error & Sendable) -> EventLoopFuture<Void> {
        let promise = self.eventLoop.makePromise(of: Void.self)
        let timer = self.eventLoop.scheduleTask(in: timeout) { promise.fail(error) }
        self.whenComplete { result in
            timer.cancel()
            promise.completeWith(result)
        }
        return promise.futureResult
    }
}
