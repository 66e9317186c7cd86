import RedisClient

extension ReadinessReport {
    /// Checks that Redis answers PING through `client`.
    public static func redis(_ client: RedisClient) async -> (name: String, problem: String?) {
        do {
            let reply = try await client.send("PING")
            return ("redis", reply.string == "PONG" ? nil : "unexpected reply to PING")
        } catch {
            return ("redis", "\(error)")
        }
    }

    /// The pub/sub connection: without it no live event reaches a stream.
    public static func subscriber(_ subscriber: RedisSubscriber) -> (name: String, problem: String?) {
        ("redisPubSub", subscriber.isConnected ? nil : "the pub/sub connection is down (reconnecting)")
    }
}
