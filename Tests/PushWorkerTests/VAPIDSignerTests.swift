import Crypto
import Foundation
import JWTKit
import PushWorker
import Synchronization
import Testing

@Suite("VAPID (RFC 8292)", .timeLimit(.minutes(1)))
struct VAPIDSignerTests {
    struct Claims: JWTPayload {
        var aud: String
        var exp: Int64
        var sub: String
        func verify(using algorithm: some JWTAlgorithm) async throws {}
    }

    @Test("the origin is scheme://host with the port only when not the default")
    func origins() {
        #expect(VAPIDSigner.origin(of: URL(string: "https://push.example.net/push/abc")!) == "https://push.example.net")
        #expect(
            VAPIDSigner.origin(of: URL(string: "https://Push.Example.net:443/x")!) == "https://push.example.net")
        #expect(
            VAPIDSigner.origin(of: URL(string: "https://push.example.net:8443/x")!) == "https://push.example.net:8443")
        #expect(VAPIDSigner.origin(of: URL(string: "http://127.0.0.1:8080/p")!) == "http://127.0.0.1:8080")
        #expect(VAPIDSigner.origin(of: URL(string: "/relative")!) == nil)
    }

    @Test("the header carries an ES256 JWT for the endpoint's origin, valid at most 24 h, verifiable with k")
    func header() async throws {
        let key = P256.Signing.PrivateKey()
        let clock = Mutex(Date(timeIntervalSince1970: 1_800_000_000))
        let signer = try await VAPIDSigner(
            privateKey: key, subject: "mailto:ops@example.com", now: { clock.withLock { $0 } })
        let value = try await signer.authorization(for: URL(string: "https://fcm.googleapis.com/fcm/send/abc")!)
        let parts = value.split(separator: " ")
        #expect(parts.count == 3 && parts[0] == "vapid" && parts[1].hasPrefix("t=") && parts[2].hasPrefix("k="))
        let token = String(parts[1].dropFirst(2).dropLast())  // drop "t=" and the ","
        #expect(String(parts[2].dropFirst(2)) == signer.publicKey)
        #expect(signer.publicKey.count == 87, "65 octets, base64url without padding")

        let verifier = JWTKeyCollection()
        await verifier.add(ecdsa: try ES256PublicKey(backing: key.publicKey))
        let claims = try await verifier.verify(token, as: Claims.self)
        #expect(claims.aud == "https://fcm.googleapis.com" && claims.sub == "mailto:ops@example.com")
        let now = Int64(1_800_000_000)
        #expect(claims.exp > now && claims.exp <= now + 24 * 3_600)

        // Cached per origin for an hour, then renewed.
        let again = try await signer.authorization(for: URL(string: "https://fcm.googleapis.com/fcm/send/other")!)
        #expect(again == value)
        let other = try await signer.authorization(for: URL(string: "https://updates.push.services.mozilla.com/x")!)
        #expect(other != value)
        clock.withLock { $0 = $0.addingTimeInterval(3_601) }
        #expect(try await signer.authorization(for: URL(string: "https://fcm.googleapis.com/fcm/send/abc")!) != value)
    }

    @Test("a subject that is not a mailto: or https: URI is refused")
    func subject() async {
        await #expect(throws: VAPIDError.self) {
            _ = try await VAPIDSigner(privateKey: P256.Signing.PrivateKey(), subject: "ops@example.com")
        }
    }
}
