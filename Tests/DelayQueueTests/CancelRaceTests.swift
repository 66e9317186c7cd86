import DelayQueue
import NotifyCore
import Testing

@Suite("Cancel racing claim", .timeLimit(.minutes(3)))
struct CancelRaceTests {
    @Test("2,000 trials: a job reported cancelled is never claimed; one marked after claim may not proceed")
    func cancelVersusClaim() async throws {
        try await withQueue(shards: 4) { queue, _, _, _ in
            let total = 2_000
            for index in 0..<total {
                try await queue.schedule(try job("r\(index)", for: "u\(index % 50)"), inMs: 0)
            }
            async let claimedJobs: [ClaimedJob] = {
                var claimed: [ClaimedJob] = []
                while claimed.count < total {
                    let batch = try await claimAll(queue, max: 7)
                    if batch.isEmpty { break }
                    claimed += batch
                }
                return claimed
            }()
            let outcomes = try await withThrowingTaskGroup(of: (String, CancelOutcome).self) { group in
                for index in 0..<total {
                    group.addTask {
                        let id = try JobID(notificationID: "r\(index)", userID: "u\(index % 50)")
                        return (id.description, try await queue.cancel(id))
                    }
                }
                var outcomes: [String: CancelOutcome] = [:]
                for try await (id, outcome) in group { outcomes[id] = outcome }
                return outcomes
            }
            let claimed = try await claimedJobs
            let claimedIDs = Set(claimed.map(\.id.description))
            #expect(claimedIDs.count == claimed.count, "no job claimed twice")
            var cancelled = 0
            var marked = 0
            for (id, outcome) in outcomes {
                switch outcome {
                case .cancelled:
                    cancelled += 1
                    #expect(!claimedIDs.contains(id), "job \(id) was reported cancelled but was claimed")
                case .markedClaimed:
                    marked += 1
                    #expect(claimedIDs.contains(id))
                default:
                    Issue.record("unexpected outcome \(outcome) for \(id)")
                }
            }
            #expect(cancelled + marked == total)
            // Both orders must have happened, or the trial proved nothing about one of them.
            #expect(cancelled > 0 && marked > 0, "cancelled \(cancelled), marked \(marked)")
            for job in claimed {
                #expect(try await queue.mayProceed(job) == false, "claimed job \(job.id) was cancelled after claim")
            }
        }
    }
}
