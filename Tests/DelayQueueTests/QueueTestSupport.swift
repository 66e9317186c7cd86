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

/// `count` user ids whose jobs fall in `count` different shards of `queue`.
func usersInDistinctShards(_ count: Int, of queue: DelayQueue, prefix: String = "u") -> [String] {
    var users: [String] = []
    var index = 0
    while users.count < count {
        let user = "\(prefix)\(index)"
        if !users.contains(where: { queue.shards.shard(of: $0) == queue.shards.shard(of: user) }) {
            users.append(user)
        }
        index += 1
    }
    return users
}
