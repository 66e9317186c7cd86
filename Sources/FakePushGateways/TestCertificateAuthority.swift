import Crypto
import Foundation
import NIOSSL
import SwiftASN1
import X509

/// A certificate authority made up for one test or benchmark run, and a server certificate it signed for
/// `localhost` and `127.0.0.1`, so fake gateways speak TLS (and so HTTP/2, which clients negotiate through ALPN)
/// that the worker verifies like any other, trusting the authority through `push.caFile`.
public struct TestCertificateAuthority: Sendable {
    /// The authority's certificate, PEM: what clients trust.
    public let caPEM: String
    /// Where ``caPEM`` was written (for `push.caFile`).
    public let caFile: String
    /// The server certificate it signed (for `localhost` and `127.0.0.1`) and its key, PEM: for servers that are not
    /// ours (a Python upstream in the Plexer's tests).
    public let serverCertificatePEM: String
    public let serverKeyPEM: String

    /// With `addressToo` false, the server certificate names `localhost` only (not `127.0.0.1`): a client must then
    /// check the name it connects to, since the address it reaches does not match.
    public init(addressToo: Bool = true) throws {
        let caKey = P256.Signing.PrivateKey()
        let caName = try DistinguishedName { CommonName("Notify test CA") }
        let now = Date()
        let ca = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(caKey.publicKey),
            notValidBefore: now.addingTimeInterval(-3_600), notValidAfter: now.addingTimeInterval(86_400),
            issuer: caName, subject: caName, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true))
            },
            issuerPrivateKey: .init(caKey))
        let serverKey = P256.Signing.PrivateKey()
        let server = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(serverKey.publicKey),
            notValidBefore: now.addingTimeInterval(-3_600), notValidAfter: now.addingTimeInterval(86_400),
            issuer: caName, subject: try DistinguishedName { CommonName("localhost") },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth])
                SubjectAlternativeNames(
                    [.dnsName("localhost")]
                        + (addressToo ? [.ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1]))] : []))
            },
            issuerPrivateKey: .init(caKey))
        self.caPEM = try ca.serializeAsPEM().pemString
        self.serverCertificatePEM = try server.serializeAsPEM().pemString
        self.serverKeyPEM = serverKey.pemRepresentation
        let file = FileManager.default.temporaryDirectory.appendingPathComponent(
            "notify-test-ca-\(UUID().uuidString).pem")
        try self.caPEM.write(to: file, atomically: true, encoding: .utf8)
        self.caFile = file.path
    }

    /// The server side: the signed certificate, offering `h2` and `http/1.1`.
    public func serverTLS() throws -> TLSConfiguration {
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: [
                .certificate(try NIOSSLCertificate(bytes: Array(self.serverCertificatePEM.utf8), format: .pem))
            ],
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(self.serverKeyPEM.utf8), format: .pem)))
        tls.applicationProtocols = ["h2", "http/1.1"]
        return tls
    }

    /// Removes the CA file.
    public func remove() {
        try? FileManager.default.removeItem(atPath: self.caFile)
    }
}
