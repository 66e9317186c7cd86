import NIOCore
import NotifyCore
import NotifyTestSupport
import RedisClient
import Testing

/// Runs `body` with a running subscriber for `server`; the subscriber is stopped afterwards.
func withSubscriber<T: Sendable>(
    _ server: LocalRedisServer,
    bufferLimit: Int = 10_000,
    user: (name: String, password: String)? = nil,
    _ body: @Sendable (RedisSubscriber) async throws -> T
) async throws -> T {
    var url = server.url
    if let user {
        url.user = user.name
        url.password = user.password
    }
    var configuration = RedisClientConfiguration(
        url: url, acquireTimeoutMs: 5_000, reconnectInitialDelayMs: 10, reconnectMaxDelayMs: 100)
    configuration.subscriptionBufferLimit = bufferLimit
    let subscriber = RedisSubscriber(configuration: configuration, logger: testLogger("subscriber"))
    return try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask {
            try await subscriber.run()
            return nil
        }
        defer { subscriber.shutdown() }
        let result = try await body(subscriber)
        subscriber.shutdown()
        try await group.waitForAll()
        return result
    }
}

@Suite("Pub/sub", .timeLimit(.minutes(2)))
struct PubSubTests {
    @Test("channel, pattern and sharded subscriptions receive what is published after subscribe returns")
    func kinds() async throws {
        try await withRedisClient { client, server in
            try await withSubscriber(server) { subscriber in
                let plain = try await subscriber.subscribe(to: ["user:1"])
                let pattern = try await subscriber.subscribe(to: ["room:*"], kind: .pattern)
                let shard = try await subscriber.subscribe(to: ["{7}:live"], kind: .shard)
                #expect(try await client.send("PUBLISH", "user:1", "hello") == .integer(1))
                #expect(try await client.send("PUBLISH", "room:42", "in room") == .integer(1))
                #expect(
                    try await client.send("SPUBLISH", "{7}:live", .bytes(ByteBuffer(bytes: [0, 1, 255]))) == .integer(1)
                )

                var iterator = plain.makeAsyncIterator()
                let first = try #require(await iterator.next())
                #expect(
                    first.channel == "user:1" && first.payload == ByteBuffer(string: "hello") && first.kind == .channel)
                var patternIterator = pattern.makeAsyncIterator()
                let second = try #require(await patternIterator.next())
                #expect(second.pattern == "room:*" && second.channel == "room:42" && second.kind == .pattern)
                var shardIterator = shard.makeAsyncIterator()
                let third = try #require(await shardIterator.next())
                #expect(third.kind == .shard && third.payload == ByteBuffer(bytes: [0, 1, 255]))
            }
        }
    }

    @Test("channels are added and removed while messages flow, without losing or duplicating any on the others")
    func addRemoveWhileFlowing() async throws {
        try await withRedisClient { client, server in
            try await withSubscriber(server) { subscriber in
                let steady = try await subscriber.subscribe(to: ["steady"])
                let total = 2_000
                let publisher = Task {
                    for sequence in 0..<total {
                        try await client.send("PUBLISH", "steady", .integer(sequence))
                    }
                }
                // Churn other channels while "steady" is flowing.
                for round in 0..<50 {
                    let extra = try await subscriber.subscribe(to: ["extra-\(round)", "steady"])
                    #expect(try await client.send("PUBLISH", .string("extra-\(round)"), "x") == .integer(1))
                    var iterator = extra.makeAsyncIterator()
                    // The extra subscription also sees "steady": skip to its own message.
                    while let message = await iterator.next(), message.channel != "extra-\(round)" {}
                    extra.unsubscribe()
                }
                try await publisher.value
                var received: [Int] = []
                for await message in steady {
                    received.append(Int(String(buffer: message.payload))!)
                    if received.count == total { break }
                }
                #expect(received == Array(0..<total))
                // Only "steady" is left subscribed, on the client and on the server.
                let numsub = try await client.send("PUBSUB", "NUMSUB", "steady", "extra-0", "extra-49")
                #expect(numsub.array?.compactMap(\.int) == [1, 0, 0])
                #expect(subscriber.subscribedCount == 1)
            }
        }
    }

    @Test("two subscriptions to one channel both get messages; the channel stays until the last one leaves")
    func sharedChannel() async throws {
        try await withRedisClient { client, server in
            try await withSubscriber(server) { subscriber in
                let first = try await subscriber.subscribe(to: ["shared"])
                let second = try await subscriber.subscribe(to: ["shared"])
                #expect(try await client.send("PUBLISH", "shared", "one") == .integer(1))
                var firstIterator = first.makeAsyncIterator()
                var secondIterator = second.makeAsyncIterator()
                #expect(await firstIterator.next()?.payload == ByteBuffer(string: "one"))
                #expect(await secondIterator.next()?.payload == ByteBuffer(string: "one"))
                first.unsubscribe()
                #expect(await firstIterator.next() == nil)
                #expect(try await client.send("PUBLISH", "shared", "two") == .integer(1))
                #expect(await secondIterator.next()?.payload == ByteBuffer(string: "two"))
                second.unsubscribe()
                // The UNSUBSCRIBE is written without waiting; PUBSUB answers after it on the server's one thread
                // only for our own connection, so ask until it shows.
                var remaining = 1
                while remaining != 0 {
                    remaining = try await client.send("PUBSUB", "NUMSUB", "shared").array?.last?.int ?? -1
                    await Task.yield()
                }
                #expect(subscriber.subscribedCount == 0)
            }
        }
    }

    @Test("after the connection is killed, the subscriber reconnects and resubscribes every channel")
    func resubscribeAfterKill() async throws {
        try await withRedisClient { client, server in
            try await withSubscriber(server) { subscriber in
                let channels = try await subscriber.subscribe(to: ["a", "b"])
                let patterns = try await subscriber.subscribe(to: ["p:*"], kind: .pattern)
                #expect(try await client.send("CLIENT", "KILL", "TYPE", "pubsub").int == 1)
                try await publishUntilReceived(client, channel: "a", on: channels)
                try await publishUntilReceived(client, channel: "p:1", on: patterns)
                #expect(try await client.send("PUBLISH", "b", "after").int == 1)
            }
        }
    }

    @Test("after a Redis restart, the subscriber resubscribes")
    func resubscribeAfterRestart() async throws {
        try await withRedisClient { client, server in
            try await withSubscriber(server) { subscriber in
                let subscription = try await subscriber.subscribe(to: ["survivor"])
                try await server.restart()
                try await publishUntilReceived(client, channel: "survivor", on: subscription)
            }
        }
    }

    @Test("an endOnGap subscription ends with overflow when its reader falls behind; others go on")
    func endOnOverflow() async throws {
        try await withRedisClient { client, server in
            try await withSubscriber(server, bufferLimit: 5) { subscriber in
                let strict = try await subscriber.subscribe(to: ["busy"], endOnGap: true)
                let lenient = try await subscriber.subscribe(to: ["busy"])
                let sync = try await subscriber.subscribe(to: ["sync"])
                var syncs = sync.makeAsyncIterator()
                for index in 0..<6 {
                    #expect(try await client.send("PUBLISH", "busy", .string("\(index)")).int == 1)
                }
                // Messages of one connection are dispatched in order: once "sync" arrived, all six reached the
                // subscriptions (nobody read them yet), so the sixth overflowed the strict one.
                #expect(try await client.send("PUBLISH", "sync", "now").int == 1)
                #expect(await syncs.next()?.channel == "sync")
                var received: [String] = []
                for await message in strict {
                    received.append(String(buffer: message.payload))
                }
                #expect(received == ["0", "1", "2", "3", "4"])
                #expect(strict.endReason == .overflow)
                #expect(lenient.endReason == nil)
                var iterator = lenient.makeAsyncIterator()
                #expect(await iterator.next()?.payload == ByteBuffer(string: "0"))
            }
        }
    }

    @Test("an endOnGap subscription ends with disconnected when the connection drops; others are resubscribed")
    func endOnDisconnect() async throws {
        try await withRedisClient { client, server in
            try await withSubscriber(server) { subscriber in
                let strict = try await subscriber.subscribe(to: ["gapless"], endOnGap: true)
                let lenient = try await subscriber.subscribe(to: ["lenient"])
                #expect(try await client.send("CLIENT", "KILL", "TYPE", "pubsub").int == 1)
                for await _ in strict {}
                #expect(strict.endReason == .disconnected)
                try await publishUntilReceived(client, channel: "lenient", on: lenient)
                #expect(try await client.send("PUBSUB", "NUMSUB", "gapless").array?.last == .integer(0))
            }
        }
    }

    @Test(
        "a channel Redis refuses fails alone, at subscribe and at resubscribe; the others are resubscribed once, with no second connection delivering duplicates"
    )
    func refusedChannel() async throws {
        try await withRedisClient { client, server in
            _ = try await client.send(
                "ACL", "SETUSER", "limited", "on", ">limited-password", "~*", "resetchannels", "&allowed:*", "+@all"
            ).throwingIfError()
            try await withSubscriber(server, user: ("limited", "limited-password")) { subscriber in
                let kept = try await subscriber.subscribe(to: ["allowed:kept"])
                let revoked = try await subscriber.subscribe(to: ["allowed:revoked"])
                await #expect(throws: RedisClientError.self) { try await subscriber.subscribe(to: ["denied"]) }
                #expect(subscriber.subscribedCount == 2)

                // Narrowing the user's channels makes Redis drop the pub/sub connection; on reconnect the revoked
                // channel is refused: its subscription ends, the kept one comes back.
                _ = try await client.send(
                    "ACL", "SETUSER", "limited", "resetchannels", "&allowed:kept"
                ).throwingIfError()
                _ = try await client.send("CLIENT", "KILL", "TYPE", "pubsub").throwingIfError()
                for await _ in revoked {}
                try await publishUntilReceived(client, channel: "allowed:kept", on: kept)
                #expect(subscriber.subscribedCount == 1)
                // Exactly one connection delivers: each message arrives once, in order.
                var iterator = kept.makeAsyncIterator()
                for index in 0..<3 {
                    #expect(try await client.send("PUBLISH", "allowed:kept", .string("m\(index)")).int == 1)
                }
                var received: [String] = []
                while received.count < 3, let message = await iterator.next() {
                    let text = String(buffer: message.payload)
                    if text != "ping" { received.append(text) }
                }
                #expect(received == ["m0", "m1", "m2"])
                #expect(try await client.send("PUBSUB", "NUMSUB", "allowed:kept").array?.last == .integer(1))
            }
        }
    }

    @Test("a second subscriber to a channel whose SUBSCRIBE is not confirmed yet waits for the confirmation")
    func secondSubscriberWaits() async throws {
        try await withRedisClient { client, server in
            try await withSubscriber(server) { subscriber in
                // Kept: a subscription that is dropped ends (and leaves its channel).
                let warmUp = try await subscriber.subscribe(to: ["warm-up"])
                // Redis holds every command for 600 ms: the first SUBSCRIBE of "slow" stays unconfirmed.
                let paused = ContinuousClock.now
                _ = try await client.send("CLIENT", "PAUSE", "600", "ALL").throwingIfError()
                let first = Task { try await subscriber.subscribe(to: ["slow"]) }
                try await QueuePoll.until { subscriber.subscribedCount == 2 }
                let second = try await subscriber.subscribe(to: ["slow"])
                #expect(ContinuousClock.now - paused >= .milliseconds(400), "returned before Redis confirmed")
                let firstSubscription = try await first.value
                #expect(try await client.send("PUBLISH", "slow", "x").int == 1)
                for subscription in [firstSubscription, second] {
                    var iterator = subscription.makeAsyncIterator()
                    #expect(await iterator.next()?.payload == ByteBuffer(string: "x"))
                }
                warmUp.unsubscribe()
            }
        }
    }

    @Test("subscribe waits for the first connection of a subscriber that has just started")
    func subscribeBeforeConnected() async throws {
        try await withRedisClient { client, server in
            try await withSubscriber(server) { subscriber in
                let subscription = try await subscriber.subscribe(to: ["early"])
                #expect(try await client.send("PUBLISH", "early", "x").int == 1)
                var iterator = subscription.makeAsyncIterator()
                #expect(await iterator.next()?.channel == "early")
            }
        }
    }
}

/// Publishes to `channel` until `subscription` yields a message: the event awaited is the message itself, and
/// publishing again covers the time the subscriber needs to reconnect.
func publishUntilReceived(_ client: RedisClient, channel: String, on subscription: RedisSubscription) async throws {
    let received = Task {
        var iterator = subscription.makeAsyncIterator()
        return await iterator.next()
    }
    let deadline = ContinuousClock.now + .seconds(10)
    while ContinuousClock.now < deadline {
        if try await client.send("PUBLISH", .string(channel), "ping").int == 1 { break }
        try await Task.sleep(for: .milliseconds(5))
    }
    let message = await received.value
    #expect(message?.channel == channel)
}

/// Polls a condition that has no event to await, briefly, up to 10 s.
enum QueuePoll {
    static func until(_ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while !condition() {
            guard ContinuousClock.now < deadline else { throw PollTimedOut() }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    struct PollTimedOut: Error {}
}
