import AsyncHTTPClient
import DelayQueue
import Foundation
import NIOCore
import NIOHTTP1
import NotifyAPI
import RedisClient
import Testing

@Suite("API bad input", .timeLimit(.minutes(2)))
struct APIValidationTests {
    @Test("an ack of absurdly large event ids answers (it once crashed the server converting their score)")
    func hugeEventIDs() async throws {
        try await withAPIServer { api in
            let token = try await api.token(for: "alice")
            let body = #"{"ids":["1302593221815247942","9999999999999999999-9999999999999999999"],"up_to":"0"}"#
            let ack = try await api.send(.POST, "/v1/ack", bearer: token, json: body)
            #expect(ack.status == 200)
            #expect(try await api.send(.GET, "/v1/inbox", bearer: token).status == 200)
        }
    }

    @Test("a body with invalid UTF-8 is refused as such, not as a type mismatch of the value it hides in")
    func invalidUTF8() async throws {
        try await withAPIServer { api in
            var request = HTTPClientRequest(url: api.baseURL + "/v1/notifications")
            request.method = .POST
            request.headers.add(name: "Authorization", value: "Bearer \(api.apiKey)")
            request.headers.add(name: "Content-Type", value: "application/json")
            var body = ByteBuffer(string: #"{"recipients":["a"],"type":"message","payload":{"text":""#)
            body.writeBytes([0xC3, 0x28])
            body.writeString(#""}}"#)
            request.body = .bytes(body)
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
            let text = String(buffer: try await response.body.collect(upTo: 1 << 16))
            #expect(response.status.code == 400)
            #expect(text.contains("the body is not valid UTF-8"), "\(text)")
        }
    }

    @Test("malformed, oversized, over-limit and unknown input gets a precise problem, and nothing is written")
    func badInput() async throws {
        try await withAPIServer(api: APIConfiguration(maxBodyBytes: 1 << 20)) { api in
            func post(_ json: String, contentType: String? = nil) async throws -> TestResponse {
                try await api.send(
                    .POST, "/v1/notifications", bearer: api.apiKey, json: json,
                    headers: contentType.map { [("Content-Type", $0)] } ?? [])
            }
            let malformed = try await post(#"{"recipients":["a"],"type":"#)
            #expect(malformed.status == 400 && malformed.problemType == "/problems/invalid-request")
            #expect(try malformed.object()["detail"] as? String == "the body is not valid JSON")

            let unknown = try await post(#"{"recipients":["a"],"type":"call","delay":5}"#)
            #expect(unknown.status == 400)
            #expect(try unknown.object()["detail"] as? String == "unknown member(s) delay")
            let unknownPush = try await post(#"{"recipients":["a"],"type":"call","push":{"delayMs":5}}"#)
            #expect(try unknownPush.object()["invalidFields"] as? [String] == ["push.delayMs"])

            let missing = try await post(#"{"type":"call"}"#)
            #expect(try missing.object()["invalidFields"] as? [String] == ["recipients"])
            let wrongType = try await post(#"{"recipients":"a","type":"call"}"#)
            #expect(try wrongType.object()["detail"] as? String == "recipients must be an array")
            let badKind = try await post(#"{"recipients":["a"],"type":"party"}"#)
            #expect(badKind.status == 400)
            #expect(try badKind.object()["invalidFields"] as? [String] == ["type"])

            let recipients = (0..<10_001).map { "\"u\($0)\"" }.joined(separator: ",")
            let tooMany = try await post(#"{"recipients":[\#(recipients)],"type":"message"}"#)
            #expect(tooMany.status == 413 && tooMany.problemType == "/problems/too-many-recipients")

            let bigPayload = String(repeating: "x", count: 5_000)
            let big = try await post(#"{"recipients":["a"],"type":"message","payload":{"t":"\#(bigPayload)"}}"#)
            #expect(big.status == 413)
            #expect(try big.object()["invalidFields"] as? [String] == ["payload"])

            let hugeBody = String(repeating: " ", count: (1 << 20) + 10)
            let huge = try await post(#"{"recipients":["a"],"type":"message"}"# + hugeBody)
            #expect(huge.status == 413 && huge.problemType == "/problems/payload-too-large", "\(huge)")

            let form = try await post("recipients=a", contentType: "application/x-www-form-urlencoded")
            #expect(form.status == 415)

            let badAck = try await api.send(
                .POST, "/v1/ack", bearer: try await api.token(for: "a"), json: #"{"up_to":"yesterday"}"#)
            #expect(badAck.status == 400)
            #expect(try badAck.object()["invalidFields"] as? [String] == ["up_to"])
            let badLimit = try await api.send(.GET, "/v1/inbox?limit=0", bearer: try await api.token(for: "a"))
            #expect(badLimit.status == 400)

            let missingRoute = try await api.send(.GET, "/v1/nothing-here", bearer: api.apiKey)
            #expect(missingRoute.status == 404 && missingRoute.problemType == "/problems/not-found")

            #expect(try await api.queue.peek(limit: 10).isEmpty)
            #expect(try await api.client.send("DBSIZE").int == 0)
        }
    }

    @Test("ingest for 10,000 recipients in one request: every one gets an event and a push job")
    func bigGroup() async throws {
        try await withAPIServer { api in
            let recipients = (0..<10_000).map { "\"member\($0)\"" }.joined(separator: ",")
            let result = try await api.notify(#"{"recipients":[\#(recipients)],"type":"message","room":"all"}"#)
            #expect((result["recipients"] as? [Any])?.count == 10_000)
            #expect(try await api.queue.stats().total.scheduledLater == 10_000)
            let inbox = try await api.send(.GET, "/v1/inbox", bearer: try await api.token(for: "member9999"))
            #expect((try inbox.object()["events"] as? [Any])?.count == 1)
        }
    }
}
