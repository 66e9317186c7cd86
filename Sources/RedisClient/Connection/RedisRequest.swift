import NIOCore

/// Commands written into a connection's pipeline together with where their replies go.
struct RedisRequest: Sendable {
    /// Where the replies of a request go.
    enum Reply {
        /// One command; its reply completes the promise.
        case single(EventLoopPromise<RedisValue>)
        /// Several commands written at once; their replies are collected in order.
        case batch(RedisBatchReplies)
    }

    /// The RESP bytes of every command of the request.
    var bytes: ByteBuffer
    var reply: Reply

    /// How many replies the request expects.
    var expectedReplies: Int {
        switch self.reply {
        case .single: 1
        case .batch(let collector): collector.expected
        }
    }

    func fail(_ error: RedisClientError) {
        switch self.reply {
        case .single(let promise): promise.fail(error)
        case .batch(let collector): collector.promise.fail(error)
        }
    }
}

/// Collects the replies of a batch.
///
/// Created by the sender and from then on touched only on the connection's event loop (by the channel handler).
final class RedisBatchReplies: @unchecked Sendable {
    let expected: Int
    let promise: EventLoopPromise<[RedisValue]>
    var values: [RedisValue]

    init(expected: Int, promise: EventLoopPromise<[RedisValue]>) {
        self.expected = expected
        self.promise = promise
        self.values = []
        self.values.reserveCapacity(expected)
    }
}
