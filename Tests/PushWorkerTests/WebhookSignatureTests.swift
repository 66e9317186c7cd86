import NotifyCore
import PushWorker
import Testing

@Suite("Webhook signatures (Standard Webhooks)", .timeLimit(.minutes(1)))
struct WebhookSignatureTests {
    // The convention's published example (also in its reference libraries' tests).
    static let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    static let id = "msg_p5jXN8AQM9LWM0D4loKWxJek"
    static let timestamp: Int64 = 1_614_265_330
    static let body = Array(#"{"test": 2432232314}"#.utf8)

    @Test("signs the Standard Webhooks example exactly as its libraries do")
    func knownVector() throws {
        let signature = WebhookSignature.sign(
            id: Self.id, timestamp: Self.timestamp, body: Self.body, secret: try WebhookSecret(Self.secret))
        #expect(signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
    }

    @Test("verification: any matching v1 signature within the tolerance; altered body, id or old timestamp fail")
    func verification() throws {
        let secret = WebhookSecret.generate()
        #expect(try WebhookSecret(secret.text) == secret)
        let signature = WebhookSignature.sign(id: "m1", timestamp: 1_000, body: [1, 2, 3], secret: secret)
        try WebhookSignature.verify(
            id: "m1", timestamp: 1_000, signatures: "v1,bm90LWl0 " + signature, body: [1, 2, 3], secret: secret,
            now: 1_200)
        #expect(throws: WebhookSignatureError.noMatchingSignature) {
            try WebhookSignature.verify(
                id: "m1", timestamp: 1_000, signatures: signature, body: [1, 2, 4], secret: secret, now: 1_000)
        }
        #expect(throws: WebhookSignatureError.noMatchingSignature) {
            try WebhookSignature.verify(
                id: "m2", timestamp: 1_000, signatures: signature, body: [1, 2, 3], secret: secret, now: 1_000)
        }
        #expect(throws: WebhookSignatureError.timestampOutOfTolerance) {
            try WebhookSignature.verify(
                id: "m1", timestamp: 1_000, signatures: signature, body: [1, 2, 3], secret: secret, now: 1_301)
        }
        #expect(throws: WebhookSecretError.self) { try WebhookSecret("whsec_c2hvcnQ=") }
    }
}
