import Foundation
import Hummingbird
import HummingbirdTesting
import NotifyAPI
import Testing

@Suite("Problem responses (RFC 9457)", .timeLimit(.minutes(3)))
struct ProblemTests {
    struct Body: Decodable {
        var type: String
        var title: String
        var status: Int
        var detail: String?
        var instance: String?
        var invalidFields: [String]?
        var limitBytes: Int?
    }

    @Test("a thrown Problem becomes problem+json with type, title, status, detail, instance and extensions")
    func rendering() async throws {
        let router = Router()
        router.post("/v1/things") { _, _ -> String in
            throw Problem.invalidRequest("recipients must not be empty", fields: ["recipients"])
        }
        router.get("/v1/big") { _, _ -> String in throw Problem.payloadTooLarge(limitBytes: 4_096) }
        router.get("/v1/secret") { _, _ -> String in throw Problem.unauthorized("missing bearer token") }
        try await Application(router: router).test(.router) { client in
            try await client.execute(uri: "/v1/things", method: .post) { response in
                #expect(response.status == .badRequest)
                #expect(response.headers[.contentType] == "application/problem+json")
                let body = try JSONDecoder().decode(Body.self, from: Data(String(buffer: response.body).utf8))
                #expect(body.type == "/problems/invalid-request" && body.title == "Invalid request")
                #expect(body.status == 400 && body.detail == "recipients must not be empty")
                #expect(body.instance == "/v1/things" && body.invalidFields == ["recipients"])
            }
            try await client.execute(uri: "/v1/big", method: .get) { response in
                #expect(response.status == .contentTooLarge)
                let body = try JSONDecoder().decode(Body.self, from: Data(String(buffer: response.body).utf8))
                #expect(body.limitBytes == 4_096 && body.status == 413)
            }
            try await client.execute(uri: "/v1/secret", method: .get) { response in
                #expect(response.status == .unauthorized)
                #expect(response.headers[.wwwAuthenticate] == "Bearer")
            }
        }
    }
}
