import PushWorker
import Testing

@Suite("Push outcome classification", .timeLimit(.minutes(1)))
struct PushOutcomeTests {
    func kind(_ outcome: PushOutcome) -> String {
        switch outcome {
        case .delivered: "delivered"
        case .removeDevice: "remove"
        case .retry: "retry"
        case .refreshCredentialsAndRetry: "refresh"
        case .deadLetter: "dead"
        case .breakCircuit: "break"
        }
    }

    @Test(
        "every row of the decision table",
        arguments: [
            (PushProvider.apns, 200, "", "delivered"), (.apns, 410, "Unregistered", "remove"),
            (.apns, 410, "ExpiredToken", "remove"), (.apns, 400, "BadDeviceToken", "remove"),
            (.apns, 400, "DeviceTokenNotForTopic", "remove"), (.apns, 429, "TooManyRequests", "retry"),
            (.apns, 500, "InternalServerError", "retry"), (.apns, 503, "ServiceUnavailable", "retry"),
            (.apns, 503, "Shutdown", "retry"), (.apns, 400, "IdleTimeout", "retry"),
            (.apns, 403, "ExpiredProviderToken", "refresh"), (.apns, 429, "TooManyProviderTokenUpdates", "retry"),
            (.apns, 403, "InvalidProviderToken", "break"), (.apns, 403, "BadCertificate", "break"),
            (.apns, 403, "BadEnvironmentKeyIdInToken", "break"), (.apns, 403, "BadEnvironmentKeyInToken", "break"),
            (.apns, 403, "BadCertificateEnvironment", "break"), (.apns, 403, "Forbidden", "dead"),
            (.apns, 413, "PayloadTooLarge", "dead"), (.apns, 400, "BadTopic", "dead"), (.apns, 405, "", "dead"),
            (.fcm, 200, "", "delivered"), (.fcm, 404, "UNREGISTERED", "remove"),
            (.fcm, 400, "The registration token is not a valid FCM registration token", "remove"),
            (.fcm, 400, "INVALID_ARGUMENT", "dead"), (.fcm, 403, "SENDER_ID_MISMATCH", "remove"),
            (.fcm, 429, "QUOTA_EXCEEDED", "retry"), (.fcm, 503, "UNAVAILABLE", "retry"),
            (.fcm, 500, "INTERNAL", "retry"), (.fcm, 401, "UNAUTHENTICATED", "refresh"),
            (.fcm, 401, "THIRD_PARTY_AUTH_ERROR", "break"), (.fcm, 403, "PERMISSION_DENIED", "break"),
            (.webPush, 201, "", "delivered"), (.webPush, 404, "", "remove"), (.webPush, 410, "", "remove"),
            (.webPush, 403, "VapidPkHashMismatch", "remove"), (.webPush, 403, "BadJwtToken", "dead"),
            (.webPush, 400, "BadTtl", "dead"), (.webPush, 413, "", "dead"), (.webPush, 429, "", "retry"),
            (.webPush, 502, "", "retry"), (.webPush, 301, "", "dead"), (.webhook, 204, "", "delivered"),
            (.webhook, 410, "", "remove"), (.webhook, 500, "", "retry"), (.webhook, 404, "", "dead"),
            (.webhook, 401, "", "dead"), (.webhook, 429, "", "retry"), (.fcm, 400, "UNREGISTERED", "remove"),
            (.fcm, 500, "UNSPECIFIED_ERROR", "retry"),
        ])
    func table(provider: PushProvider, status: Int, reason: String, expected: String) {
        let outcome = PushOutcome.classify(GatewayResponse(status: status, reason: reason), from: provider)
        #expect(self.kind(outcome) == expected, "\(provider) \(status) \(reason)")
    }

    @Test("no answer at all is a network retry; Retry-After wins over a shorter back-off; the reason is kept")
    func networkAndRetryAfter() {
        let timeout = PushOutcome.classify(GatewayResponse(status: nil, reason: "timeout"), from: .fcm)
        #expect(timeout == .retry(reason: "no answer: timeout", retryAfterMs: nil, backoff: .network))
        let limited = PushOutcome.classify(GatewayResponse(status: 429, retryAfterMs: 120_000), from: .webPush)
        guard case .retry(let reason, let retryAfter, let backoff) = limited else {
            Issue.record("expected a retry, got \(limited)")
            return
        }
        #expect(reason == "HTTP 429" && retryAfter == 120_000)
        #expect(backoff.delayMs(afterAttempt: 1, retryAfterMs: retryAfter, jitter: 0) == 120_000)
        #expect(backoff.delayMs(afterAttempt: 3, retryAfterMs: retryAfter, jitter: 0) == 240_000)
    }

    @Test("back-off doubles from its base, stays under its cap, and jitters within ±20 %")
    func backoff() {
        let server = PushBackoff.fcmServer
        #expect(server.delayMs(afterAttempt: 1, jitter: 0) == 10_000)
        #expect(server.delayMs(afterAttempt: 2, jitter: 0) == 20_000)
        #expect(server.delayMs(afterAttempt: 30, jitter: 0) == 15 * 60_000)
        #expect(server.delayMs(afterAttempt: 1, jitter: 0.2) == 12_000)
        #expect(server.delayMs(afterAttempt: 1, jitter: -0.2) == 8_000)
    }
}
