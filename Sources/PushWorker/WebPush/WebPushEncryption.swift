import Crypto
import Foundation

/// RFC 8291 message encryption for Web Push: the RFC 8188 `aes128gcm` content coding with exactly one record, keyed
/// by ECDH between a fresh application-server key and the subscription's `p256dh` key, mixed with its `auth` secret.
///
/// Every message gets a fresh ephemeral key and a fresh random salt (reusing either would reuse a key and nonce);
/// tests inject both to reproduce RFC 8291 Appendix A.
public enum WebPushEncryption {
    /// The largest plaintext that fits the 4,096-octet body push services must accept: 4,096 minus the 86-octet
    /// header, the delimiter and the 16-octet tag.
    public static let maxPlaintextBytes = 3_993
    static let headerBytes = 86
    static let tagBytes = 16

    /// The request body for `plaintext`, padded with zeros to `paddedLength` octets when given (hides the length).
    public static func encrypt(
        _ plaintext: [UInt8], p256dh: [UInt8], auth: [UInt8], paddedLength: Int? = nil,
        ephemeralKey: P256.KeyAgreement.PrivateKey = P256.KeyAgreement.PrivateKey(),
        salt: [UInt8] = (0..<16).map { _ in UInt8.random(in: .min ... .max) }
    ) throws(WebPushEncryptionError) -> [UInt8] {
        guard auth.count == 16 else { throw .invalidSubscription("auth must be 16 octets, got \(auth.count)") }
        guard salt.count == 16 else { throw .invalidSubscription("salt must be 16 octets") }
        let length = max(plaintext.count, paddedLength ?? 0)
        guard length <= Self.maxPlaintextBytes else {
            throw .tooLarge("\(plaintext.count) octets; at most \(Self.maxPlaintextBytes) fit one record")
        }
        let subscriber: P256.KeyAgreement.PublicKey
        do {
            subscriber = try P256.KeyAgreement.PublicKey(x963Representation: p256dh)
        } catch {
            throw .invalidSubscription("p256dh is not an uncompressed P-256 point")
        }
        let serverPublic = Array(ephemeralKey.publicKey.x963Representation)
        let keys = try Self.contentKeys(
            privateKey: ephemeralKey, peer: subscriber, receiverPublic: Array(subscriber.x963Representation),
            senderPublic: serverPublic, auth: auth, salt: salt)
        var record = plaintext
        record.append(0x02)  // the last (and only) record's delimiter
        record.append(contentsOf: repeatElement(0, count: length - plaintext.count))
        let sealed: AES.GCM.SealedBox
        do {
            sealed = try AES.GCM.seal(record, using: keys.cek, nonce: keys.nonce)
        } catch {
            throw .cryptoFailure("\(error)")
        }
        // rs must exceed the one record's plaintext + delimiter + padding + tag (RFC 8291 §4); 4096 always does,
        // and is what the RFC's example uses.
        let recordSize: UInt32 = 4_096
        var body = salt
        body.reserveCapacity(Self.headerBytes + record.count + Self.tagBytes)
        withUnsafeBytes(of: recordSize.bigEndian) { body.append(contentsOf: $0) }
        body.append(UInt8(serverPublic.count))
        body.append(contentsOf: serverPublic)
        body.append(contentsOf: sealed.ciphertext)
        body.append(contentsOf: sealed.tag)
        return body
    }

    /// What a user agent does with a body: checks the header, derives the keys and returns the message without
    /// its delimiter and padding. The fake push service of the tests uses it to prove what the worker sent.
    public static func decrypt(
        _ body: [UInt8], privateKey: P256.KeyAgreement.PrivateKey, auth: [UInt8]
    ) throws(WebPushEncryptionError) -> [UInt8] {
        guard body.count > Self.headerBytes + Self.tagBytes, body[20] == 65 else {
            throw .malformed("the body is shorter than its header and tag, or its keyid is not a 65-octet key")
        }
        let salt = Array(body[0..<16])
        let senderPublic = Array(body[21..<86])
        let sender: P256.KeyAgreement.PublicKey
        do {
            sender = try P256.KeyAgreement.PublicKey(x963Representation: senderPublic)
        } catch {
            throw .malformed("the keyid is not a P-256 point")
        }
        let keys = try Self.contentKeys(
            privateKey: privateKey, peer: sender, receiverPublic: Array(privateKey.publicKey.x963Representation),
            senderPublic: senderPublic, auth: auth, salt: salt)
        let encrypted = body[Self.headerBytes...]
        let record: [UInt8]
        do {
            let box = try AES.GCM.SealedBox(
                nonce: keys.nonce, ciphertext: encrypted.dropLast(Self.tagBytes), tag: encrypted.suffix(Self.tagBytes))
            record = Array(try AES.GCM.open(box, using: keys.cek))
        } catch {
            throw .malformed("the record does not decrypt (wrong key, auth or salt, or altered)")
        }
        // The delimiter is the last non-zero octet; a single record must use 0x02.
        guard let end = record.lastIndex(where: { $0 != 0 }), record[end] == 0x02 else {
            throw .malformed("the record has no final-record delimiter")
        }
        return Array(record[..<end])
    }

    private static func contentKeys(
        privateKey: P256.KeyAgreement.PrivateKey, peer: P256.KeyAgreement.PublicKey, receiverPublic: [UInt8],
        senderPublic: [UInt8], auth: [UInt8], salt: [UInt8]
    ) throws(WebPushEncryptionError) -> (cek: SymmetricKey, nonce: AES.GCM.Nonce) {
        let shared: SharedSecret
        do {
            shared = try privateKey.sharedSecretFromKeyAgreement(with: peer)
        } catch {
            throw .cryptoFailure("ECDH failed: \(error)")
        }
        // RFC 8291 §3.3: IKM = HKDF(salt: auth, ikm: ECDH secret, info: "WebPush: info" 0x00 ua_public as_public).
        let keyInfo = Array("WebPush: info".utf8) + [0x00] + receiverPublic + senderPublic
        let ikm = shared.hkdfDerivedSymmetricKey(
            using: SHA256.self, salt: auth, sharedInfo: keyInfo, outputByteCount: 32)
        // RFC 8188 §2.2, §2.3: one record, so the nonce is used as derived (sequence 0).
        let cek = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: ikm, salt: salt, info: Array("Content-Encoding: aes128gcm".utf8) + [0x00],
            outputByteCount: 16)
        let nonceKey = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: ikm, salt: salt, info: Array("Content-Encoding: nonce".utf8) + [0x00],
            outputByteCount: 12)
        do {
            return (cek, try nonceKey.withUnsafeBytes { try AES.GCM.Nonce(data: Array($0)) })
        } catch {
            throw .cryptoFailure("nonce: \(error)")
        }
    }
}

/// Why a Web Push message could not be encrypted or decrypted.
public enum WebPushEncryptionError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The subscription's keys are unusable: the device should be removed, not retried.
    case invalidSubscription(String)
    /// The message does not fit one record.
    case tooLarge(String)
    /// A body that is not a valid aes128gcm message for these keys.
    case malformed(String)
    case cryptoFailure(String)

    public var description: String {
        switch self {
        case .invalidSubscription(let reason): "invalid Web Push subscription: \(reason)"
        case .tooLarge(let reason): "Web Push message too large: \(reason)"
        case .malformed(let reason): "malformed Web Push message: \(reason)"
        case .cryptoFailure(let reason): "Web Push encryption failed: \(reason)"
        }
    }
}
