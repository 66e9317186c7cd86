import AsyncHTTPClient
import Foundation
import JWTKit
import NIOCore
import NIOFoundationCompat
import NIOFoundationEssentialsCompat
import NIOHTTP1

/// An OAuth2 access token for FCM HTTP v1, from a service account (RFC 7523 JWT bearer grant, RS256): cached
/// until five minutes before it expires, fetched once for all concurrent senders (single flight), and dropped
/// when FCM answers `UNAUTHENTICATED`.
public actor FCMAccessToken {
    public nonisolated let account: FCMServiceAccount
    private let keys: JWTKeyCollection
    private let http: HTTPClient
    private let now: @Sendable () -> Date
    private var current: (token: String, renewAt: Date)?
    private var fetching: Task<(String, Date), any Error>?

    static let scope = "https://www.googleapis.com/auth/firebase.messaging"
    static let renewBefore: TimeInterval = 5 * 60

    public init(account: FCMServiceAccount, http: HTTPClient, now: @escaping @Sendable () -> Date = { Date() })
        async throws(FCMTokenError)
    {
        let keys = JWTKeyCollection()
        do {
            let key = try Insecure.RSA.PrivateKey(pem: account.privateKey)
            await keys.add(
                rsa: key, digestAlgorithm: .sha256, kid: account.privateKeyID.map { JWKIdentifier(string: $0) })
        } catch {
            throw FCMTokenError("the service account's private_key is not an RSA PEM key")
        }
        self.account = account
        self.keys = keys
        self.http = http
        self.now = now
    }

    /// The `Authorization` value (`Bearer <token>`). `rejecting`: the value FCM just refused; a new token is
    /// fetched unless another caller replaced that one already (late refusals of an old token cost nothing).
    public func authorization(rejecting refused: String? = nil) async throws -> String {
        if let refused, let current = self.current, "Bearer \(current.token)" == refused { self.current = nil }
        if let current = self.current, self.now() < current.renewAt { return "Bearer \(current.token)" }
        if let fetching = self.fetching { return "Bearer \(try await fetching.value.0)" }
        // Only this caller, the one that started the fetch, stores its result and clears `fetching`: joiners
        // resuming later must not put back a token that was refused meanwhile.
        let task = Task { try await self.fetch() }
        self.fetching = task
        defer { self.fetching = nil }
        let (token, renewAt) = try await task.value
        self.current = (token, renewAt)
        return "Bearer \(token)"
    }

    private func fetch() async throws -> (String, Date) {
        let now = self.now()
        let claims = GoogleAssertionClaims(
            iss: self.account.clientEmail, scope: Self.scope, aud: self.account.tokenURI,
            iat: Int64(now.timeIntervalSince1970), exp: Int64(now.timeIntervalSince1970) + 3_600)
        let assertion = try await self.keys.sign(claims)
        var request = HTTPClientRequest(url: self.account.tokenURI)
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/x-www-form-urlencoded")
        request.body = .bytes(
            ByteBuffer(
                string: "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=\(assertion)"))
        let response = try await self.http.execute(request, timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 64 * 1024)
        guard response.status == .ok else {
            // invalid_grant and friends: a key, clock or configuration fault; the body names it, without secrets.
            throw FCMTokenError(
                "the token endpoint answered \(response.status.code): \(String(buffer: body).prefix(200))")
        }
        struct Grant: Decodable {
            var accessToken: String
            var expiresIn: Int
        }
        let grant: Grant
        do {
            let decoder = JSONDecoder()
            decoder.keyDecodingStrategy = .convertFromSnakeCase
            grant = try decoder.decode(Grant.self, from: body)
        } catch {
            throw FCMTokenError("the token endpoint's answer has no accessToken and expiresIn")
        }
        return (grant.accessToken, now.addingTimeInterval(Double(grant.expiresIn) - Self.renewBefore))
    }
}

struct GoogleAssertionClaims: JWTPayload {
    var iss: String
    var scope: String
    var aud: String
    var iat: Int64
    var exp: Int64

    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

public struct FCMTokenError: Error, Sendable, Hashable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
