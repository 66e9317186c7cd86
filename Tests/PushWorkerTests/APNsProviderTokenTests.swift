import Crypto
import Foundation
import JWTKit
import PushWorker
import Synchronization
import Testing

@Suite("APNs provider token", .timeLimit(.minutes(1)))
struct APNsProviderTokenTests {
    struct Claims: JWTPayload {
        var iss: String
        var iat: Int64
        func verify(using algorithm: some JWTAlgorithm) async throws {}
    }

    struct Header: Decodable {
        var alg: String
        var kid: String
    }

    @Test("ES256 with kid and iss/iat; reused until 45 min, renewed then; a forced refresh waits for 20 min")
    func token() async throws {
        let key = P256.Signing.PrivateKey()
        let clock = Mutex(Date(timeIntervalSince1970: 1_800_000_000))
        let provider = try await APNsProviderToken(
            p8: key.pemRepresentation, keyID: "ABC123DEFG", teamID: "DEF123GHIJ", now: { clock.withLock { $0 } })
        let first = try await provider.authorization()
        #expect(first.hasPrefix("bearer "))
        let jwt = String(first.dropFirst(7))

        let verifier = JWTKeyCollection()
        await verifier.add(ecdsa: try ES256PublicKey(backing: key.publicKey), kid: JWKIdentifier(string: "ABC123DEFG"))
        let claims = try await verifier.verify(jwt, as: Claims.self)
        #expect(claims.iss == "DEF123GHIJ" && claims.iat == 1_800_000_000)
        var header64 = String(jwt.split(separator: ".")[0]).replacingOccurrences(of: "-", with: "+")
            .replacingOccurrences(of: "_", with: "/")
        header64 += String(repeating: "=", count: (4 - header64.count % 4) % 4)
        let header = try JSONDecoder().decode(Header.self, from: try #require(Data(base64Encoded: header64)))
        #expect(header.alg == "ES256" && header.kid == "ABC123DEFG")

        clock.withLock { $0 = $0.addingTimeInterval(10 * 60) }
        #expect(try await provider.authorization() == first)
        // ExpiredProviderToken at 10 minutes: Apple would refuse a new one this soon, so the same comes back.
        #expect(try await provider.authorization(expired: true) == first)
        clock.withLock { $0 = $0.addingTimeInterval(11 * 60) }
        let forced = try await provider.authorization(expired: true)
        #expect(forced != first)
        clock.withLock { $0 = $0.addingTimeInterval(44 * 60) }
        #expect(try await provider.authorization() == forced)
        clock.withLock { $0 = $0.addingTimeInterval(2 * 60) }
        #expect(try await provider.authorization() != forced)
    }

    @Test("a key that is not a P-256 .p8, or ids of the wrong length, are refused at start")
    func refusals() async {
        await #expect(throws: APNsTokenError.self) {
            _ = try await APNsProviderToken(p8: "not a key", keyID: "ABC123DEFG", teamID: "DEF123GHIJ")
        }
        let pem = P256.Signing.PrivateKey().pemRepresentation
        await #expect(throws: APNsTokenError.self) {
            _ = try await APNsProviderToken(p8: pem, keyID: "short", teamID: "DEF123GHIJ")
        }
    }
}
