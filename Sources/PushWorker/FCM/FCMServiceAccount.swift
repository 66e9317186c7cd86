import Foundation
import NotifyCore

/// The fields of a Google service account's JSON key that FCM HTTP v1 needs.
public struct FCMServiceAccount: Sendable, Hashable {
    public var projectID: String
    public var clientEmail: String
    /// PKCS#8 PEM of the RSA key.
    public var privateKey: String
    public var privateKeyID: String?
    /// Where the signed assertion is exchanged for an access token (`https://oauth2.googleapis.com/token`).
    public var tokenURI: String

    public init(
        projectID: String, clientEmail: String, privateKey: String, privateKeyID: String? = nil,
        tokenURI: String = "https://oauth2.googleapis.com/token"
    ) {
        self.projectID = projectID
        self.clientEmail = clientEmail
        self.privateKey = privateKey
        self.privateKeyID = privateKeyID
        self.tokenURI = tokenURI
    }

    /// Reads the JSON key file's contents.
    public init(json: String) throws(NotifyConfigError) {
        struct File: Decodable {
            var type: String?
            var projectId: String
            var clientEmail: String
            var privateKey: String
            var privateKeyId: String?
            var tokenUri: String?
        }
        let file: File
        do {
            let decoder = JSONDecoder()
            decoder.keyDecodingStrategy = .convertFromSnakeCase
            file = try decoder.decode(File.self, from: Data(json.utf8))
        } catch {
            throw NotifyConfigError(
                "push.fcm.serviceAccount is not a service account JSON key (projectId, clientEmail, privateKey)")
        }
        if let type = file.type, type != "service_account" {
            throw NotifyConfigError("push.fcm.serviceAccount has type \(type), not service_account")
        }
        self.init(
            projectID: file.projectId, clientEmail: file.clientEmail, privateKey: file.privateKey,
            privateKeyID: file.privateKeyId, tokenURI: file.tokenUri ?? "https://oauth2.googleapis.com/token")
    }
}
