import DelayQueue
import NIOCore
import NotifyCore
import NotifyTestSupport
import RedisClient

/// Runs `body` with a queue on a fresh Redis, driven by a manual clock unless `clock` says otherwise.
func withQueue<T>(
    configuration: DelayQueueConfiguration = DelayQueueConfiguration(),
    shards: Int = 8,
    manualClock: Bool = true,
    redisArguments: [String] = [],
    _ body: (DelayQueue, ManualQueueClock, RedisClient, LocalRedisServer) async throws -> T
) async throws -> T {
    try await withRedisClient(arguments: redisArguments) { client, server in
        let clock = ManualQueueClock()
        let queue = DelayQueue(
            client: client, configuration: configuration, shards: ShardMap(count: shards),
            clock: manualClock ? .manual(clock) : .redis)
        try await queue.prepare()
        return try await body(queue, clock, client, server)
    }
}

/// A job for `user` with a small payload.
func job(_ notification: String, for user: String = "alice", event: StreamID? = nil, payload: String = "{}") throws
    -> QueueJob
{
    QueueJob(
        id: try JobID(notificationID: notification, userID: user), payload: ByteBuffer(string: payload), eventID: event)
}

/// Claims from every shard.
func claimAll(_ queue: DelayQueue, max: Int = 1_000) async throws -> [ClaimedJob] {
    var jobs: [ClaimedJob] = []
    for shard in queue.shards.all {
        jobs += try await queue.claim(shard: shard, max: max).jobs
    }
    return jobs
}
