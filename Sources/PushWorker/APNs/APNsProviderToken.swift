import Crypto
import Foundation
import JWTKit

/// The APNs provider token: an ES256 JWT (`kid` = key id, `iss` = team id, `iat` = now) shared by every request
/// of one team and key. Apple refuses a token older than an hour (`ExpiredProviderToken`) and one replaced sooner
/// than 20 minutes after the last (`TooManyProviderTokenUpdates`), so it is replaced after 45 minutes, and a
/// forced refresh (after `ExpiredProviderToken`) is honoured only once the current token is 20 minutes old.
public actor APNsProviderToken {
    public nonisolated let keyID: String
    public nonisolated let teamID: String
    private let keys: JWTKeyCollection
    private let now: @Sendable () -> Date
    private var current: (token: String, issuedAt: Date)?
    private var signing: Task<Result<String, APNsTokenError>, Never>?

    static let renewAfter: TimeInterval = 45 * 60
    static let minimumAge: TimeInterval = 20 * 60

    /// - Parameters:
    ///   - p8: the `.p8` key file's contents (PKCS#8 PEM, P-256).
    ///   - now: the clock (tests move it).
    public init(p8: String, keyID: String, teamID: String, now: @escaping @Sendable () -> Date = { Date() })
        async throws(APNsTokenError)
    {
        guard keyID.count == 10, teamID.count == 10 else {
            throw APNsTokenError("the APNs key id and team id are 10 characters each")
        }
        let key: P256.Signing.PrivateKey
        do {
            key = try P256.Signing.PrivateKey(pemRepresentation: p8)
        } catch {
            throw APNsTokenError("the APNs key is not a P-256 PKCS#8 PEM (.p8) key")
        }
        let keys = JWTKeyCollection()
        do {
            await keys.add(ecdsa: try ES256PrivateKey(backing: key), kid: JWKIdentifier(string: keyID))
        } catch {
            throw APNsTokenError("the APNs key could not be used: \(error)")
        }
        self.keys = keys
        self.keyID = keyID
        self.teamID = teamID
        self.now = now
    }

    /// The `authorization` value (`bearer <jwt>`). `expired`: APNs answered `ExpiredProviderToken` for the
    /// current token, so make a new one if Apple allows it yet.
    public func authorization(expired: Bool = false) async throws(APNsTokenError) -> String {
        let now = self.now()
        if let current = self.current {
            let age = now.timeIntervalSince(current.issuedAt)
            let stillGood = expired ? age < Self.minimumAge : age < Self.renewAfter
            if stillGood { return "bearer \(current.token)" }
        }
        // One signing for all concurrent callers: several tokens minted at one renewal would reach APNs on the
        // same connection within milliseconds (TooManyProviderTokenUpdates).
        if let signing = self.signing { return "bearer \(try await Self.value(of: signing))" }
        let claims = APNsClaims(iss: self.teamID, iat: Int64(now.timeIntervalSince1970))
        let keys = self.keys
        let keyID = self.keyID
        let task = Task { () -> Result<String, APNsTokenError> in
            do {
                return .success(try await keys.sign(claims, kid: JWKIdentifier(string: keyID)))
            } catch {
                return .failure(APNsTokenError("signing the provider token failed: \(error)"))
            }
        }
        self.signing = task
        defer { self.signing = nil }
        let token = try await Self.value(of: task)
        self.current = (token, now)
        return "bearer \(token)"
    }

    private static func value(of task: Task<Result<String, APNsTokenError>, Never>) async throws(APNsTokenError)
        -> String
    {
        try await task.value.get()
    }
}

struct APNsClaims: JWTPayload {
    var iss: String
    var iat: Int64

    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

public struct APNsTokenError: Error, Sendable, Hashable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
