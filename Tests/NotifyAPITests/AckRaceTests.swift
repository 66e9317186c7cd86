import DelayQueue
import Foundation
import NIOHTTP1
import NotifyAPI
import NotifyCore
import NotifyTestSupport
import RedisClient
import Testing

/// Acks against workers and against other users, over real HTTP.
@Suite("Acks racing workers", .timeLimit(.minutes(3)))
struct AckRaceTests {
    @Test("acks racing a worker's claims: each push is cancelled or reported in flight, never both, never neither")
    func ackRacesClaim() async throws {
        try await withAPIServer { api in
            let total = 300
            var eventIDs: [String] = []
            for index in 0..<total {
                eventIDs.append(
                    try await api.notifyEventID(
                        #"{"recipients":["alice"],"type":"message","payload":{"n":\#(index)},"push":{"delay_ms":0}}"#))
            }
            let token = try await api.token(for: "alice")
            let shard = api.queue.shards.shard(of: "alice")
            // A worker already holds the first hundred; the rest it claims one by one while the acks arrive.
            let held = try await api.queue.claim(shard: shard, max: 100).jobs
            #expect(held.count == 100)
            async let claimedJobs: [ClaimedJob] = {
                var claimed = held
                while claimed.count < total {
                    let batch = try await api.queue.claim(shard: shard, max: 1).jobs
                    if batch.isEmpty { break }
                    claimed += batch
                }
                return claimed
            }()
            let answers = try await withThrowingTaskGroup(of: (cancelled: Int, inFlight: Int).self) { group in
                for id in eventIDs {
                    group.addTask {
                        let answer = try await api.send(
                            .POST, "/v1/ack", bearer: token, json: #"{"ids":["\#(id)"]}"#
                        ).object()
                        return (answer["cancelled"] as? Int ?? -1, answer["in_flight"] as? Int ?? -1)
                    }
                }
                var answers: [(cancelled: Int, inFlight: Int)] = []
                for try await answer in group { answers.append(answer) }
                return answers
            }
            let claimed = try await claimedJobs
            let cancelled = answers.reduce(0) { $0 + $1.cancelled }
            let inFlight = answers.reduce(0) { $0 + $1.inFlight }
            #expect(cancelled + inFlight == total, "every ack found its push")
            #expect(inFlight == claimed.count, "exactly the claimed pushes are reported in flight")
            #expect(
                cancelled > 0 && inFlight > 0, "both orders must occur: cancelled \(cancelled), in flight \(inFlight)")
            for job in claimed {
                #expect(try await api.queue.mayProceed(job) == false, "\(job.id) may still be sent after its ack")
            }
            let stats = try await api.queue.stats().total
            #expect(stats.counters["cancelMarked"] == inFlight && stats.counters["cancelled"] == cancelled)
        }
    }

    @Test("bob acking alice's event ids cancels nothing of hers")
    func ackOtherUsersEvents() async throws {
        try await withAPIServer { api in
            let aliceEvent = try await api.notifyEventID(#"{"recipients":["alice"],"type":"message"}"#)
            let bob = try await api.token(for: "bob")
            for body in [#"{"ids":["\#(aliceEvent)"]}"#, #"{"up_to":"\#(aliceEvent)"}"#] {
                let ack = try await api.send(.POST, "/v1/ack", bearer: bob, json: body)
                #expect(ack.status == 200)
                #expect(try ack.object()["cancelled"] as? Int == 0 && ack.object()["in_flight"] as? Int == 0)
            }
            #expect(try await api.queue.peek(limit: 10).map(\.id).count == 1)
        }
    }

    @Test("an SSE stream survives CLIENT KILL TYPE pubsub: events published meanwhile arrive, in order, once")
    func streamAcrossPubSubKill() async throws {
        try await withAPIServer { api in
            let stream = try await SSEStream.open(api, token: try await api.token(for: "alice"))
            var events = stream.events.makeAsyncIterator()
            _ = try await stream.waitUntilReady(&events)
            #expect(try await api.client.send("CLIENT", "KILL", "TYPE", "pubsub").int == 1)
            var sent: [String] = []
            for index in 0..<20 {
                sent.append(
                    try await api.notifyEventID(
                        #"{"recipients":["alice"],"type":"message","payload":{"n":\#(index)},"push":null}"#))
            }
            var received: [String] = []
            while received.count < sent.count, let event = try await events.nextNotification() {
                if let id = event.id { received.append(id) }
            }
            #expect(received == sent)
            stream.close()
        }
    }
}
