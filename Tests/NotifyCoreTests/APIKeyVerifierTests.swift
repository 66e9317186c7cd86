import Configuration
import NotifyCore
import Testing

@Suite("API keys", .timeLimit(.minutes(3)))
struct APIKeyVerifierTests {
    @Test("keys are checked against configured SHA-256 digests, several at once for rotation")
    func rotation() async throws {
        let old = APIKeyVerifier.generate(name: "backend-2025")
        let new = APIKeyVerifier.generate(name: "backend-2026")
        #expect(old.key.hasPrefix("nk_") && old.key != new.key)
        #expect(!old.entry.contains(old.key), "the config entry must not contain the key itself")
        let config = try await NotifyConfigLoader.reader(environment: [
            "NOTIFY_AUTH_API_KEYS": "\(old.entry),\(new.entry)"
        ])
        let verifier = try APIKeyVerifier(config: config.scoped(to: "auth"), key: "apiKeys")
        #expect(verifier.verify(old.key) == "backend-2025")
        #expect(verifier.verify(new.key) == "backend-2026")
        #expect(verifier.verify(String(new.key.dropLast())) == nil)
        #expect(verifier.verify("") == nil)
    }

    @Test("no configured keys means every key is refused")
    func empty() async throws {
        let config = try await NotifyConfigLoader.reader(environment: [:])
        let verifier = try APIKeyVerifier(config: config.scoped(to: "auth"), key: "apiKeys")
        #expect(verifier.entries.isEmpty && verifier.verify("nk_anything") == nil)
    }

    @Test("malformed entries are a clear configuration error that does not echo the value")
    func malformed() async throws {
        for bad in [
            "justakey", "name:abc", ":" + String(repeating: "a", count: 64), "n:" + String(repeating: "g", count: 64),
        ] {
            let config = try await NotifyConfigLoader.reader(environment: ["NOTIFY_AUTH_API_KEYS": bad])
            let error = #expect(throws: NotifyConfigError.self) {
                try APIKeyVerifier(config: config.scoped(to: "auth"), key: "apiKeys")
            }
            #expect(error?.description.contains(bad) == false)
        }
    }
}
