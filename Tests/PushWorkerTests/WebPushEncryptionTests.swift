import Crypto
import Foundation
import PushWorker
import Testing

@Suite("Web Push encryption (RFC 8291)", .timeLimit(.minutes(1)))
struct WebPushEncryptionTests {
    static func bytes(_ base64URL: String) -> [UInt8] {
        var text = base64URL.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        text += String(repeating: "=", count: (4 - text.count % 4) % 4)
        return Array(Data(base64Encoded: text)!)
    }

    // RFC 8291 Appendix A.
    static let plaintext = Array("When I grow up, I want to be a watermelon".utf8)
    static let asPrivate = bytes("yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw")
    static let uaPublic = bytes(
        "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4")
    static let uaPrivate = bytes("q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94")
    static let salt = bytes("DGv6ra1nlYgDCS1FRnbzlw")
    static let auth = bytes("BTBZMqHH6r4Tts7J_aSIgg")
    static let body = bytes(
        "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_"
            + "yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN")

    @Test("reproduces RFC 8291 Appendix A byte for byte")
    func appendixA() throws {
        let asKey = try P256.KeyAgreement.PrivateKey(rawRepresentation: Self.asPrivate)
        let ours = try WebPushEncryption.encrypt(
            Self.plaintext, p256dh: Self.uaPublic, auth: Self.auth, ephemeralKey: asKey, salt: Self.salt)
        #expect(Self.body.count == 144)
        #expect(ours == Self.body)
    }

    @Test("the RFC's body decrypts with the user agent's key to the RFC's message")
    func decryptsAppendixA() throws {
        let uaKey = try P256.KeyAgreement.PrivateKey(rawRepresentation: Self.uaPrivate)
        #expect(try WebPushEncryption.decrypt(Self.body, privateKey: uaKey, auth: Self.auth) == Self.plaintext)
    }

    @Test("fresh keys and salt every time; padding hides the length; wrong auth or a flipped bit fails")
    func roundTrip() throws {
        let subscriber = P256.KeyAgreement.PrivateKey()
        let auth = (0..<16).map { _ in UInt8.random(in: .min ... .max) }
        let p256dh = Array(subscriber.publicKey.x963Representation)
        let message = Array(#"{"title":"New message"}"#.utf8)
        let first = try WebPushEncryption.encrypt(message, p256dh: p256dh, auth: auth)
        let second = try WebPushEncryption.encrypt(message, p256dh: p256dh, auth: auth)
        #expect(first != second && Array(first[0..<16]) != Array(second[0..<16]))
        #expect(try WebPushEncryption.decrypt(first, privateKey: subscriber, auth: auth) == message)
        let padded = try WebPushEncryption.encrypt(message, p256dh: p256dh, auth: auth, paddedLength: 1_000)
        #expect(padded.count == 86 + 1_001 + 16)
        #expect(try WebPushEncryption.decrypt(padded, privateKey: subscriber, auth: auth) == message)

        var wrongAuth = auth
        wrongAuth[0] ^= 1
        #expect(throws: WebPushEncryptionError.self) {
            try WebPushEncryption.decrypt(first, privateKey: subscriber, auth: wrongAuth)
        }
        var altered = first
        altered[altered.count - 1] ^= 1
        #expect(throws: WebPushEncryptionError.self) {
            try WebPushEncryption.decrypt(altered, privateKey: subscriber, auth: auth)
        }
    }

    @Test("bad subscriptions and oversized messages are refused with a reason")
    func refusals() throws {
        let p256dh = Array(P256.KeyAgreement.PrivateKey().publicKey.x963Representation)
        let auth = [UInt8](repeating: 7, count: 16)
        #expect(throws: WebPushEncryptionError.self) {
            try WebPushEncryption.encrypt([1], p256dh: Array(p256dh.dropLast()), auth: auth)
        }
        #expect(throws: WebPushEncryptionError.self) { try WebPushEncryption.encrypt([1], p256dh: p256dh, auth: [1]) }
        let tooBig = [UInt8](repeating: 0x41, count: WebPushEncryption.maxPlaintextBytes + 1)
        #expect(throws: WebPushEncryptionError.self) {
            try WebPushEncryption.encrypt(tooBig, p256dh: p256dh, auth: auth)
        }
        let largest = [UInt8](repeating: 0x41, count: WebPushEncryption.maxPlaintextBytes)
        #expect(try WebPushEncryption.encrypt(largest, p256dh: p256dh, auth: auth).count == 4_096)
    }
}
