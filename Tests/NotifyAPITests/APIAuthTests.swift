import AsyncHTTPClient
import Foundation
import Hummingbird
import HummingbirdTesting
import JWTKit
import NIOCore
import NIOHTTP1
import NotifyAPI
import NotifyCore
import NotifyTestSupport
import ServiceLifecycle
import Synchronization
import Testing

/// A fake OIDC issuer (the outside world): serves its JWKS like a Keycloak realm's `certs` endpoint, and signs
/// tokens with its keys.
final class FakeIssuer: Sendable {
    /// A 2048-bit RSA key made for these tests only.
    static let rsaPEM = """
        -----BEGIN PRIVATE KEY-----
        MIIEvwIBADANBgkqhkiG9w0BAQEFAASCBKkwggSlAgEAAoIBAQDErLErxDiaRjaP
        MyZyYT2hIRbzcTJMH8KR4FtZP4GwU7gs49ev4bsXW6BBWUMomHsPi5zil7WxfMMW
        XrMb98ley2aGquZ8EIKxrOJAGgSBCLNvlTGeVFrnhoCOn+xc1KIyfLiadXgeYyG7
        uXd+9NI487Iki9sLziXqYA0bmIVupdzYpGOgPIqDs8vSZ8izo36e9j9XCpSi5jEw
        uw49wVGXk5YrOPqoMZQBGAleW2pQz/1Dt51uB7Q7t66dxi6Fa8fGDmPx4n4LVD26
        Yp/1evOTiTprkQbx41nOQzngra9nMkl3XuBaysaIEVFnnCXqqhQQK3vJXCZRUUN6
        zxtI9RBTAgMBAAECggEAYbQ+4fS9f9rAsPwirfDj6n+jRLYn3AxtHwYbq2cyuNOm
        a9qWpIAZ7z0sDDrZc7nobK0Zd7IRZ8aIrjzGcu7ygV6/pMgS73BOVREDZv/l2+pk
        Jdsyxqq2bE1z4SbOh8F0gGtYVBdmYIYz1GwLUq0yIGvkRGacH62+RUSJTnvDUddB
        8WqZjUXqi1lparr1xIeTzsp4cWbzMs0sAk/i5aG3+qNA1YW99oF5KsgN860pHvqn
        fUdTWMScqfa1xPGo7MsoRvWclpfcD6JD8ZXkSjYsVN2Ocx0rfPu7wqQcGziVcxU4
        uEGhS3i/9uNlS27Jf/TSLwuSu0w5MSsW9RuyTO2WIQKBgQDslOSyUHShnpvKewf2
        A9UOzKilyq5tmHzZFz9eaooYShFqiiuYTTJ+irWKW7bYwIs7Vaoqf9pFn++B7p9/
        A69QMU/QPduuWKJWu4h5K1O3tJuT3yKB3k01l8bGrIX/bTaQkNji5n+zgJPs9Hej
        5ZAtxVwrSVFDesSR7ptpS+bMMwKBgQDU0UNU2/6PIfIqlOlEuV13XPgVcl6f56x5
        4REeJp0ksOYoHblCCVnxicv6AnUJzbpHQnOdslIUAqOUCM5EXKBGExiWom/9W8xY
        U4a62W9wh3MDPITcnT0SPzEGrAJpVXnXtDmSrn+0thrU/5NKVwwFL+KFiIPo4rYh
        cNFacdaLYQKBgQCCIv0SITOm26py3O5qI32FYIq8eBsu6hxzBlizRQOljMi7xDlq
        07wc44wtCXoxDOkJwHuUWTPl7K5A2NQfeBVtlVKECCLZaqQR9aKClJS+jritxKYk
        rfXmrxCGpMwozxieuS600XoZcXbtdySAoXyH0PJ8VR5Acj3C0G/oofnZBQKBgQCi
        nvGjg6QGfbsOHNIPaNHqJwmPYeC6sg6S54/sCTelVOPanbP1qS2oq1JJzdzfS+xf
        DYFJbHzZu5aBxSTRCjKSuX7dhGytHpuMlu7qEsLcKzSQsYsZBbIoIk91OLVzBhTf
        5mDkHCGL1me0gUNs2A1gXVHsFgAuUic4cHwZb8mwoQKBgQCYeo4igxHYWuXQxtOV
        aA+k/S1Hb1zxVK/0psmLMKAyng8iGnFrBNwa9sfsMT+LFk6XQ3uRx/s9fK9xnpmK
        ZdStZMsdr74t85V2IIO3o8Ur53K9X5OwwxO9lYzl2p6g/UeicC4R3vsXJzZuw0i2
        QEhLUwqTYQPhGAuGh7kf9QS9RA==
        -----END PRIVATE KEY-----
        """
    static let rsaModulus =
        "xKyxK8Q4mkY2jzMmcmE9oSEW83EyTB_CkeBbWT-BsFO4LOPXr-G7F1ugQVlDKJh7D4uc4pe1sXzDFl6zG_fJXstmhqrmfBCCsaziQBoEgQizb5UxnlRa54aAjp_sXNSiMny4mnV4HmMhu7l3fvTSOPOyJIvbC84l6mANG5iFbqXc2KRjoDyKg7PL0mfIs6N-nvY_VwqUouYxMLsOPcFRl5OWKzj6qDGUARgJXltqUM_9Q7edbge0O7euncYuhWvHxg5j8eJ-C1Q9umKf9Xrzk4k6a5EG8eNZzkM54K2vZzJJd17gWsrGiBFRZ5wl6qoUECt7yVwmUVFDes8bSPUQUw"

    let jwks = Mutex<[String]>([])
    let fetches = Atomic<Int>(0)
    /// The `Cache-Control` header of the JWKS answer (none by default).
    let cacheControl = Mutex<String?>(nil)
    /// While set, the JWKS endpoint answers 503 (the issuer is down).
    let failing = Atomic<Bool>(false)

    init() {
        self.publish(Self.rsaJWK(kid: "k1"))
    }

    static func rsaJWK(kid: String) -> String {
        #"{"kty":"RSA","kid":"\#(kid)","use":"sig","alg":"RS256","n":"\#(Self.rsaModulus)","e":"AQAB"}"#
    }

    func publish(_ jwk: String) {
        self.jwks.withLock { $0.append(jwk) }
    }

    /// Serves exactly these keys from now on (a removed key is one no longer listed).
    func replaceKeys(with jwks: [String]) {
        self.jwks.withLock { $0 = jwks }
    }

    func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.get("realms/chat/protocol/openid-connect/certs") { _, _ -> Response in
            self.fetches.add(1, ordering: .relaxed)
            if self.failing.load(ordering: .relaxed) { return Response(status: .serviceUnavailable) }
            let keys = self.jwks.withLock { $0.joined(separator: ",") }
            var headers: HTTPFields = [.contentType: "application/json"]
            if let cacheControl = self.cacheControl.withLock({ $0 }) { headers[.cacheControl] = cacheControl }
            return Response(
                status: .ok, headers: headers,
                body: ResponseBody(byteBuffer: ByteBuffer(string: #"{"keys":[\#(keys)]}"#)))
        }
        return router
    }

    static func rsaToken(
        kid: String = "k1", user: String = "alice", issuer: String = APITestServer.issuer,
        audience: String = APITestServer.audience, expiresIn: Double = 3_600
    ) async throws -> String {
        let keys = JWTKeyCollection()
        await keys.add(
            rsa: try Insecure.RSA.PrivateKey(pem: Self.rsaPEM), digestAlgorithm: .sha256,
            kid: JWKIdentifier(string: kid))
        return try await keys.sign(
            TestClaims(sub: user, iss: issuer, aud: [audience], exp: Date().timeIntervalSince1970 + expiresIn),
            kid: JWKIdentifier(string: kid))
    }
}

/// Runs a fake issuer on a loopback port and `body` with its JWKS URL.
func withFakeIssuer<T: Sendable>(_ body: @Sendable (FakeIssuer, String) async throws -> T) async throws -> T {
    let issuer = FakeIssuer()
    let app = Application(
        router: issuer.router(), configuration: ApplicationConfiguration(address: .hostname("127.0.0.1", port: 0)))
    return try await app.test(.live) { client in
        let url = "http://127.0.0.1:\(client.port ?? 0)/realms/chat/protocol/openid-connect/certs"
        return try await body(issuer, url)
    }
}

@Suite("API authentication", .timeLimit(.minutes(2)))
struct APIAuthTests {
    @Test("user tokens from the issuer's JWKS are accepted; every kind of bad token is refused with 401 problem JSON")
    func userTokens() async throws {
        try await withFakeIssuer { issuer, jwksURL in
            let tokens = UserTokenConfiguration(
                jwksURL: jwksURL, issuer: APITestServer.issuer, audience: APITestServer.audience,
                hs256Secret: APITestServer.hs256Secret, jwksRefreshIntervalMs: 0)
            try await withAPIServer(tokens: tokens) { api in
                func status(_ token: String?) async throws -> TestResponse {
                    try await api.send(.GET, "/v1/inbox", bearer: token)
                }
                #expect(try await status(try await FakeIssuer.rsaToken()).status == 200)
                #expect(try await status(try await api.token(for: "alice")).status == 200)

                let refused: [(String, String?)] = [
                    ("no token", nil),
                    ("expired", try await FakeIssuer.rsaToken(expiresIn: -120)),
                    ("wrong issuer", try await FakeIssuer.rsaToken(issuer: "https://evil.test/realms/chat")),
                    ("wrong audience", try await FakeIssuer.rsaToken(audience: "another-app")),
                    ("unknown kid", try await FakeIssuer.rsaToken(kid: "k9")),
                    ("alg none", Self.unsignedToken(user: "alice")),
                    ("HS256 with the RSA public key", try await Self.hmacWithPublicKey()),
                    (
                        "HS256 with another secret",
                        try await api.token(for: "alice", secret: String(repeating: "x", count: 40))
                    ),
                    ("an API key", api.apiKey),
                    ("garbage", "not.a.jwt"),
                ]
                for (name, token) in refused {
                    let response = try await status(token)
                    #expect(response.status == 401, "\(name): \(response.status)")
                    #expect(response.problemType == "/problems/unauthorized", "\(name)")
                    #expect(response.headers.first(name: "WWW-Authenticate") == "Bearer", "\(name)")
                }
                let noneDetail = try await status(Self.unsignedToken(user: "alice")).object()["detail"] as? String
                #expect(noneDetail == "token algorithm none is not allowed")
                // A user token does not open backend or admin endpoints.
                let userToken = try await FakeIssuer.rsaToken()
                let ingest = try await api.send(
                    .POST, "/v1/notifications", bearer: userToken, json: #"{"recipients":["a"],"type":"call"}"#)
                #expect(ingest.status == 401)
                #expect(try await api.send(.GET, "/v1/admin/queues", bearer: userToken).status == 401)
            }
        }
    }

    @Test("a key the issuer adds later (rotation) is fetched on the first token that names it")
    func keyRotation() async throws {
        try await withFakeIssuer { issuer, jwksURL in
            let tokens = UserTokenConfiguration(
                jwksURL: jwksURL, issuer: APITestServer.issuer, audience: APITestServer.audience,
                jwksRefreshIntervalMs: 0)
            try await withAPIServer(tokens: tokens) { api in
                #expect(try await api.send(.GET, "/v1/inbox", bearer: try await FakeIssuer.rsaToken()).status == 200)
                let before = issuer.fetches.load(ordering: .relaxed)
                let rotated = try await FakeIssuer.rsaToken(kid: "k2")
                #expect(try await api.send(.GET, "/v1/inbox", bearer: rotated).status == 401)
                issuer.publish(FakeIssuer.rsaJWK(kid: "k2"))
                #expect(try await api.send(.GET, "/v1/inbox", bearer: rotated).status == 200)
                #expect(issuer.fetches.load(ordering: .relaxed) == before + 2)
            }
        }
    }

    @Test(
        "a key the issuer removed is refused once the issuer's max-age has passed; the last good set serves while the issuer is down; a flood of unknown kids fetches once per refresh interval"
    )
    func keyRemovalAndCacheLifetime() async throws {
        try await withFakeIssuer { issuer, jwksURL in
            issuer.cacheControl.withLock { $0 = "public, max-age=120" }
            let elapsed = Mutex<Duration>(.zero)
            let start = ContinuousClock.now
            let verifier = UserTokenVerifier(
                configuration: UserTokenConfiguration(
                    jwksURL: jwksURL, issuer: APITestServer.issuer, audience: APITestServer.audience,
                    jwksMinCacheMs: 0),
                logger: testLogger("tokens"), now: { start + elapsed.withLock { $0 } })
            func advance(seconds: Int) { elapsed.withLock { $0 += .seconds(seconds) } }
            func accepts(_ token: String) async -> Bool {
                do {
                    return try await verifier.verify(token) == "alice"
                } catch {
                    return false
                }
            }
            let k1 = try await FakeIssuer.rsaToken(kid: "k1")
            #expect(await accepts(k1))
            #expect(issuer.fetches.load(ordering: .relaxed) == 1)

            // 50 forged kids within the refresh interval: no fetch; after it, one.
            for index in 0..<50 {
                #expect(await accepts(try await FakeIssuer.rsaToken(kid: "forged\(index)")) == false)
            }
            #expect(issuer.fetches.load(ordering: .relaxed) == 1)
            advance(seconds: 11)
            for index in 0..<50 {
                #expect(await accepts(try await FakeIssuer.rsaToken(kid: "forged\(index)")) == false)
            }
            #expect(issuer.fetches.load(ordering: .relaxed) == 2)

            // The issuer removes k1: still used until the set's max-age (120 s from the last fetch) has passed.
            issuer.replaceKeys(with: [FakeIssuer.rsaJWK(kid: "k2")])
            advance(seconds: 100)
            #expect(await accepts(k1))
            // Past it, but the issuer is down: the last good set stays in use.
            issuer.failing.store(true, ordering: .relaxed)
            advance(seconds: 40)
            #expect(await accepts(k1))
            #expect(issuer.fetches.load(ordering: .relaxed) == 3)
            // The issuer is back: the next fetch (after the refresh interval) drops k1.
            issuer.failing.store(false, ordering: .relaxed)
            advance(seconds: 11)
            #expect(await accepts(k1) == false)
            #expect(await accepts(try await FakeIssuer.rsaToken(kid: "k2")))
            #expect(issuer.fetches.load(ordering: .relaxed) == 4)
        }
    }

    @Test("an issuer down at start is used as soon as it answers, after the refresh interval")
    func issuerDownAtStart() async throws {
        try await withFakeIssuer { issuer, jwksURL in
            issuer.failing.store(true, ordering: .relaxed)
            let elapsed = Mutex<Duration>(.zero)
            let start = ContinuousClock.now
            let verifier = UserTokenVerifier(
                configuration: UserTokenConfiguration(
                    jwksURL: jwksURL, issuer: APITestServer.issuer, audience: APITestServer.audience),
                logger: testLogger("tokens"), now: { start + elapsed.withLock { $0 } })
            await #expect(throws: UserTokenError.self) { try await verifier.prepare() }
            let token = try await FakeIssuer.rsaToken(kid: "k1")
            await #expect(throws: UserTokenError.self) { try await verifier.verify(token) }
            issuer.failing.store(false, ordering: .relaxed)
            elapsed.withLock { $0 += .seconds(11) }
            #expect(try await verifier.verify(token) == "alice")
            #expect(issuer.fetches.load(ordering: .relaxed) == 2)
        }
    }

    @Test("while the issuer is down the last good key set serves for jwksMaxStaleMs past its lifetime, not longer")
    func jwksMaxStale() async throws {
        try await withFakeIssuer { issuer, jwksURL in
            issuer.cacheControl.withLock { $0 = "max-age=60" }
            let elapsed = Mutex<Duration>(.zero)
            let start = ContinuousClock.now
            let verifier = UserTokenVerifier(
                configuration: UserTokenConfiguration(
                    jwksURL: jwksURL, issuer: APITestServer.issuer, audience: APITestServer.audience,
                    jwksMinCacheMs: 0, jwksMaxStaleMs: 600_000),
                logger: testLogger("tokens"), now: { start + elapsed.withLock { $0 } })
            let token = try await FakeIssuer.rsaToken(kid: "k1")
            #expect(try await verifier.verify(token) == "alice")
            issuer.failing.store(true, ordering: .relaxed)
            elapsed.withLock { $0 += .seconds(60 + 599) }
            #expect(try await verifier.verify(token) == "alice")
            elapsed.withLock { $0 += .seconds(2) }
            await #expect(throws: UserTokenError.self) { try await verifier.verify(token) }
            // The issuer answers again: tokens work at once (the next fetch after the refresh interval).
            issuer.failing.store(false, ordering: .relaxed)
            elapsed.withLock { $0 += .seconds(11) }
            #expect(try await verifier.verify(token) == "alice")
        }
    }

    @Test("the JWKS cache lifetime follows the issuer's Cache-Control within the configured bounds")
    func jwksCacheLifetime() {
        let configuration = UserTokenConfiguration(jwksMinCacheMs: 60_000, jwksMaxCacheMs: 3_600_000)
        #expect(configuration.jwksCacheMs(cacheControl: "public, max-age=600") == 600_000)
        #expect(configuration.jwksCacheMs(cacheControl: "max-age=5") == 60_000)
        #expect(configuration.jwksCacheMs(cacheControl: "max-age=999999999") == 3_600_000)
        #expect(configuration.jwksCacheMs(cacheControl: "no-cache") == 60_000)
        #expect(configuration.jwksCacheMs(cacheControl: nil) == 300_000)
    }

    @Test("backend endpoints need a configured API key")
    func apiKeys() async throws {
        try await withAPIServer { api in
            let body = #"{"recipients":["a"],"type":"call"}"#
            #expect(try await api.send(.POST, "/v1/notifications", json: body).status == 401)
            let wrong = try await api.send(.POST, "/v1/notifications", bearer: "nk_wrong", json: body)
            #expect(wrong.status == 401 && wrong.problemType == "/problems/unauthorized")
            let basic = try await api.send(
                .POST, "/v1/notifications", json: body, headers: [("Authorization", "Basic YTpi")])
            #expect(basic.status == 401)
            #expect(try await api.send(.POST, "/v1/notifications", bearer: api.adminKey, json: body).status == 401)
        }
    }

    static func unsignedToken(user: String) -> String {
        let header = Base64URL.encode(Array(#"{"alg":"none","typ":"JWT"}"#.utf8))
        let exp = Int(Date().timeIntervalSince1970) + 3_600
        let payload = Base64URL.encode(
            Array(#"{"sub":"\#(user)","iss":"\#(APITestServer.issuer)","aud":"notify","exp":\#(exp)}"#.utf8))
        return "\(header).\(payload)."
    }

    /// The classic confusion attack: an HS256 token whose HMAC key is the issuer's public RSA key (PEM).
    static func hmacWithPublicKey() async throws -> String {
        let publicPEM = try Insecure.RSA.PrivateKey(pem: FakeIssuer.rsaPEM).publicKey.pemRepresentation
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: publicPEM), digestAlgorithm: .sha256, kid: "k1")
        return try await keys.sign(
            TestClaims(
                sub: "alice", iss: APITestServer.issuer, aud: [APITestServer.audience],
                exp: Date().timeIntervalSince1970 + 3_600),
            kid: "k1")
    }
}
