import DelayQueue
import NotifyAPI
import NotifyCore
import NotifyTestSupport
import RedisClient

/// What an ingest test works with: a fresh Redis, its queue on a manual clock, and an ingestor.
struct IngestFixture {
    let client: RedisClient
    let server: LocalRedisServer
    let queue: DelayQueue
    let clock: ManualQueueClock
    let keys: UserKeys
    let ingestor: Ingestor
    var inbox: Inbox { Inbox(client: self.client, keys: self.keys) }
}

func withIngestor<T>(
    configuration: IngestConfiguration = IngestConfiguration(), shards: Int = 8, redisArguments: [String] = [],
    _ body: (IngestFixture) async throws -> T
) async throws -> T {
    try await withRedisClient(arguments: redisArguments) { client, server in
        let clock = ManualQueueClock()
        let shardMap = ShardMap(count: shards)
        let queue = DelayQueue(client: client, shards: shardMap, clock: .manual(clock))
        let keys = UserKeys(shards: shardMap)
        let ingestor = Ingestor(client: client, queue: queue, keys: keys, configuration: configuration)
        return try await body(
            IngestFixture(
                client: client, server: server, queue: queue, clock: clock, keys: keys, ingestor: ingestor))
    }
}
