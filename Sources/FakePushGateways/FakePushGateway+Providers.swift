import Crypto
import Foundation
import Hummingbird
import JWTKit
import NIOCore
import Synchronization

/// APNs and FCM HTTP v1 as the fake gateway serves them, with the checks of PUSH_PROTOCOLS.md: APNs' provider
/// token (ES256 with the configured key id, the team as `iss`, `iat` under an hour old), required headers and
/// their values, the 4 KB payload limit and `aps`; FCM's OAuth2 token endpoint (an RS256 assertion from the
/// service account, for the messaging scope, at most an hour long) and `messages:send` (a token it issued, the
/// project, one target, string-only data, Duration TTLs). Failures answer with the services' own reasons.
extension FakePushGateway {
    struct APNsAccount {
        var keys: JWTKeyCollection
        var teamID: String
    }

    struct FCMAccount {
        var keys: JWTKeyCollection
        var clientEmail: String
        var projectID: String
    }

    /// Accepts provider tokens signed by `key` under `keyID` for `teamID`.
    public func configureAPNs(key: P256.Signing.PublicKey, keyID: String, teamID: String) async throws {
        let keys = JWTKeyCollection()
        await keys.add(ecdsa: try ES256PublicKey(backing: key), kid: JWKIdentifier(string: keyID))
        self.state.withLock { $0.apns = APNsAccount(keys: keys, teamID: teamID) }
    }

    /// Accepts token requests signed by the service account's key (PEM of its public key).
    public func configureFCM(publicKeyPEM: String, clientEmail: String, projectID: String) async throws {
        let keys = JWTKeyCollection()
        await keys.add(rsa: try Insecure.RSA.PublicKey(pem: publicKeyPEM), digestAlgorithm: .sha256)
        self.state.withLock { $0.fcm = FCMAccount(keys: keys, clientEmail: clientEmail, projectID: projectID) }
    }

    /// Forgets every access token issued (as an expiry would): the next send gets `401 UNAUTHENTICATED`.
    public func revokeAccessTokens() {
        self.state.withLock { $0.accessTokens = [] }
    }

    /// Access tokens handed out so far.
    public var tokenGrants: Int { self.state.withLock { $0.tokenGrants } }

    func addProviderRoutes(to router: Router<BasicRequestContext>) {
        router.post("3/device/:token") { request, context -> Response in
            let token = try context.parameters.require("token")
            let body = Array(buffer: try await request.body.collect(upTo: 1 << 20))
            if let (status, reason) = await self.checkAPNs(request, body: body, token: token) {
                return self.reject(
                    Violation("APNs \(reason)"), status: .init(code: status), body: #"{"reason":"\#(reason)"}"#)
            }
            if let answer = await self.scripted(token) { return answer }
            self.accept(Delivery(kind: "apns", target: token, body: body, headers: Self.headers(request)))
            var response = Response(status: .ok)
            response.headers[.init("apns-id")!] = request.headers[.init("apns-id")!] ?? UUID().uuidString.lowercased()
            return response
        }
        router.post("token") { request, _ -> Response in
            let form = String(buffer: try await request.body.collect(upTo: 64 * 1024))
            if let problem = await self.checkGrant(request, form: form) {
                return self.reject(
                    Violation("OAuth \(problem)"), status: .badRequest,
                    body: #"{"error":"invalid_grant","error_description":"\#(problem)"}"#)
            }
            let token = "ya29.fake-" + UUID().uuidString
            self.state.withLock {
                $0.accessTokens.insert(token)
                $0.tokenGrants += 1
            }
            var response = Response(
                status: .ok,
                body: ResponseBody(
                    byteBuffer: ByteBuffer(
                        string: #"{"access_token":"\#(token)","expires_in":3599,"token_type":"Bearer"}"#)))
            response.headers[.contentType] = "application/json"
            return response
        }
        router.post("v1/projects/:project/messages:send") { request, context -> Response in
            let project = try context.parameters.require("project")
            let body = Array(buffer: try await request.body.collect(upTo: 1 << 20))
            switch self.checkFCM(request, project: project, body: body) {
            case .failure(let failure):
                return self.reject(
                    Violation("FCM \(failure.status) \(failure.message)"), status: .init(code: failure.code),
                    body: failure.json)
            case .success(let target):
                if let answer = await self.scripted(target) { return answer }
                self.accept(Delivery(kind: "fcm", target: target, body: body, headers: Self.headers(request)))
                var response = Response(
                    status: .ok,
                    body: ResponseBody(
                        byteBuffer: ByteBuffer(
                            string: #"{"name":"projects/\#(project)/messages/\#(UUID().uuidString)"}"#)))
                response.headers[.contentType] = "application/json"
                return response
            }
        }
    }

    // MARK: APNs

    private func checkAPNs(_ request: Request, body: [UInt8], token: String) async -> (Int, String)? {
        let headers = request.headers
        guard let account = self.state.withLock({ $0.apns }) else { return (403, "InvalidProviderToken") }
        guard let authorization = headers[.authorization], authorization.hasPrefix("bearer ") else {
            return (403, "MissingProviderToken")
        }
        do {
            let claims = try await account.keys.verify(String(authorization.dropFirst(7)), as: APNsTestClaims.self)
            guard claims.iss == account.teamID else { return (403, "InvalidProviderToken") }
            let now = Int64(Date().timeIntervalSince1970)
            if claims.iat < now - 3_600 { return (403, "ExpiredProviderToken") }
            if claims.iat > now + 60 { return (403, "InvalidProviderToken") }
        } catch {
            return (403, "InvalidProviderToken")
        }
        guard token.count >= 64, token.allSatisfy(\.isHexDigit) else { return (400, "BadDeviceToken") }
        guard let topic = headers[.init("apns-topic")!], !topic.isEmpty else { return (400, "MissingTopic") }
        let types = [
            "alert", "background", "location", "voip", "complication", "fileprovider", "mdm", "liveactivity",
            "pushtotalk", "widgets", "controls",
        ]
        guard let type = headers[.init("apns-push-type")!], types.contains(type) else {
            return (400, "InvalidPushType")
        }
        if let priority = headers[.init("apns-priority")!], !["10", "5", "1"].contains(priority) {
            return (400, "BadPriority")
        }
        if type == "background", headers[.init("apns-priority")!] != "5" { return (400, "BadPriority") }
        if let expiration = headers[.init("apns-expiration")!], Int64(expiration) == nil {
            return (400, "BadExpirationDate")
        }
        if let id = headers[.init("apns-id")!],
            id.wholeMatch(of: /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/) == nil
        {
            return (400, "BadMessageId")
        }
        if let collapse = headers[.init("apns-collapse-id")!], collapse.utf8.count > 64 {
            return (400, "BadCollapseId")
        }
        guard !body.isEmpty else { return (400, "PayloadEmpty") }
        guard body.count <= 4_096 else { return (413, "PayloadTooLarge") }
        guard let json = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any],
            json["aps"] is [String: Any]
        else { return (400, "BadPayload") }
        return nil
    }

    // MARK: FCM

    private func checkGrant(_ request: Request, form: String) async -> String? {
        guard let account = self.state.withLock({ $0.fcm }) else { return "no service account is configured" }
        guard request.headers[.contentType]?.hasPrefix("application/x-www-form-urlencoded") == true else {
            return "Content-Type must be application/x-www-form-urlencoded"
        }
        var fields: [String: String] = [:]
        for pair in form.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map {
                String($0).removingPercentEncoding ?? String($0)
            }
            if parts.count == 2 { fields[parts[0]] = parts[1] }
        }
        guard fields["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer", let assertion = fields["assertion"]
        else { return "grant_type must be the JWT bearer grant, with an assertion" }
        do {
            let claims = try await account.keys.verify(assertion, as: GoogleTestClaims.self)
            let now = Int64(Date().timeIntervalSince1970)
            guard claims.iss == account.clientEmail else { return "iss is not the service account" }
            guard claims.aud.hasSuffix("/token") else { return "aud must be the token endpoint" }
            guard claims.scope.split(separator: " ").contains("https://www.googleapis.com/auth/firebase.messaging")
            else { return "the firebase.messaging scope is missing" }
            guard claims.exp > now, claims.exp - claims.iat <= 3_600, claims.iat <= now + 60 else {
                return "exp must be in the future and at most 1 h after iat"
            }
        } catch {
            return "the assertion does not verify: \(error)"
        }
        return nil
    }

    struct FCMFailure: Error {
        var code: Int
        var status: String
        var message: String
        var errorCode: String?

        var json: String {
            let detail =
                self.errorCode.map {
                    #","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"\#($0)"}]"#
                } ?? ""
            return
                #"{"error":{"code":\#(self.code),"message":"\#(self.message)","status":"\#(self.status)"\#(detail)}}"#
        }
    }

    /// The message's target token, or the error FCM would answer.
    private func checkFCM(_ request: Request, project: String, body: [UInt8]) -> Result<String, FCMFailure> {
        let (account, issued) = self.state.withLock { ($0.fcm, $0.accessTokens) }
        guard let authorization = request.headers[.authorization], authorization.hasPrefix("Bearer "),
            issued.contains(String(authorization.dropFirst(7)))
        else {
            return .failure(
                FCMFailure(
                    code: 401, status: "UNAUTHENTICATED", message: "Request had invalid authentication credentials."))
        }
        guard project == account?.projectID else {
            return .failure(
                FCMFailure(code: 403, status: "PERMISSION_DENIED", message: "Permission denied on project \(project)."))
        }
        func invalid(_ message: String) -> Result<String, FCMFailure> {
            .failure(FCMFailure(code: 400, status: "INVALID_ARGUMENT", message: message, errorCode: "INVALID_ARGUMENT"))
        }
        guard request.headers[.contentType]?.hasPrefix("application/json") == true else {
            return invalid("Content-Type must be JSON")
        }
        guard let root = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any],
            let message = root["message"] as? [String: Any]
        else { return invalid("Invalid JSON payload: no message.") }
        let targets = ["token", "topic", "condition"].filter { message[$0] != nil }
        guard targets.count == 1, let token = message["token"] as? String else {
            return invalid("Exactly one of token, topic or condition is required.")
        }
        if let data = message["data"] {
            guard let strings = data as? [String: Any], strings.values.allSatisfy({ $0 is String }) else {
                return invalid("Invalid value at 'message.data': values must be strings.")
            }
            if strings.keys.contains(where: {
                $0 == "from" || $0 == "message_type" || $0.hasPrefix("google.") || $0.hasPrefix("gcm.")
            }) {
                return invalid("Invalid data key: reserved.")
            }
        }
        if let android = message["android"] as? [String: Any] {
            if let ttl = android["ttl"], (ttl as? String)?.wholeMatch(of: /[0-9]+(\.[0-9]{1,9})?s/) == nil {
                return invalid("Invalid value at 'message.android.ttl' (type.googleapis.com/google.protobuf.Duration).")
            }
            if let priority = android["priority"], !["HIGH", "NORMAL"].contains(priority as? String ?? "") {
                return invalid("Invalid value at 'message.android.priority'.")
            }
        }
        let sized = try? JSONSerialization.data(withJSONObject: [
            "n": message["notification"] ?? [:], "d": message["data"] ?? [:],
        ])
        if (sized?.count ?? 0) > 4_096 { return invalid("Message payload is too big.") }
        return .success(token)
    }
}

struct APNsTestClaims: JWTPayload {
    var iss: String
    var iat: Int64
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

struct GoogleTestClaims: JWTPayload {
    var iss: String
    var scope: String
    var aud: String
    var iat: Int64
    var exp: Int64
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}
