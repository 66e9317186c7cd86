import Configuration
import Foundation
import NIOSSL

/// Certificate authorities that outbound TLS trusts besides the system's store (`push.caFile`,
/// `plexer.upstreamCaFile`): an internal CA, or a test's.
public enum TrustedAuthorities {
    /// The PEM file that `key` of `config` names, read and parsed now: a wrong file is a clear error at start, not
    /// every TLS connection failing later. (TLS reads the file again when it first connects.) `setting` is the key's
    /// full name, for the error.
    public static func file(_ config: ConfigReader, key: String, setting: String) throws(NotifyConfigError)
        -> String?
    {
        guard let path = config.string(forKey: ConfigKey(key)), !path.isEmpty else { return nil }
        guard FileManager.default.isReadableFile(atPath: path) else {
            throw NotifyConfigError("\(setting): \(path) is not a readable file")
        }
        do {
            _ = try NIOSSLCertificate.fromPEMFile(path)  // throws on a file without certificates too
        } catch {
            throw NotifyConfigError("\(setting): \(path) is not a PEM file of certificates")
        }
        return path
    }

    /// Client TLS that verifies peers against the system's store and `caFile`'s authorities, when given.
    public static func clientTLS(caFile: String?) -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        if let caFile { tls.additionalTrustRoots = [.file(caFile)] }
        return tls
    }
}
