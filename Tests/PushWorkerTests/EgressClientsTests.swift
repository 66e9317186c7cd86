import AsyncHTTPClient
import Foundation
import NotifyCore
import Testing

@testable import PushWorker

@Suite("Egress clients", .timeLimit(.minutes(1)))
struct EgressClientsTests {
    @Test("a mixed-case host is sent as the lowercased name its DNS pin is keyed by")
    func pinnedHostIsLowercased() async throws {
        let clients = EgressClients(
            policy: EgressPolicy(allowLoopback: true), configuration: HTTPClient.Configuration())
        let url = try #require(URL(string: "http://LocalHost:9/Hook?A=1"))
        let result = await clients.client(for: url)
        await clients.shutdown()
        let pinned = try result.get()
        // AHC looks its DNS override up by the request's host exactly: an upper-case letter would bypass the pin
        // and let AHC resolve the name again (DNS rebinding).
        #expect(pinned.host == "localhost")
        #expect(pinned.url == "http://localhost:9/Hook?A=1")
    }

    @Test("this machine is refused unless loopback is allowed, as a dead letter (never worth a retry)")
    func refusals() async throws {
        let strict = EgressClients(policy: EgressPolicy(), configuration: HTTPClient.Configuration())
        let url = try #require(URL(string: "https://localhost/x"))
        let result = await strict.client(for: url)
        await strict.shutdown()
        let refusal = try #require(result.failure)
        #expect(!refusal.transient)
        guard case .deadLetter = refusal.outcome else {
            Issue.record("a refused address is a dead letter, got \(refusal.outcome)")
            return
        }
    }
}

extension Result {
    fileprivate var failure: Failure? {
        if case .failure(let failure) = self { return failure }
        return nil
    }
}
