import NIOCore
import RedisClient
import Testing

@testable import DelayQueue

@Suite("The cancel check's replies", .timeLimit(.minutes(1)))
struct MayProceedTests {
    let job: ClaimedJob

    init() throws {
        self.job = ClaimedJob(
            id: try JobID(notificationID: "n1", userID: "alice"), shard: 0, payload: ByteBuffer(), attempt: 1,
            leaseToken: "7", dueAtMs: 0, claimedAtMs: 0)
    }

    @Test("not cancelled and still leased proceeds; a cancel mark or another lease does not")
    func answers() throws {
        #expect(try DelayQueue.mayProceed(self.job, .integer(0), .bulkString(ByteBuffer(string: "7"))))
        #expect(try !DelayQueue.mayProceed(self.job, .integer(1), .bulkString(ByteBuffer(string: "7"))))
        #expect(try !DelayQueue.mayProceed(self.job, .integer(0), .bulkString(ByteBuffer(string: "8"))))
        #expect(try !DelayQueue.mayProceed(self.job, .integer(0), .null))
    }

    @Test("an error reply (BUSY, LOADING) cannot tell: it throws instead of reading as cancelled")
    func errorRepliesThrow() {
        #expect(throws: RedisClientError.self) {
            try DelayQueue.mayProceed(self.job, .error("BUSY Redis is busy running a script"), .null)
        }
        #expect(throws: RedisClientError.self) {
            try DelayQueue.mayProceed(self.job, .integer(0), .error("LOADING Redis is loading the dataset"))
        }
    }
}
