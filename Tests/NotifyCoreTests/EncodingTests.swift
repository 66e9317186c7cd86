import NotifyCore
import Testing

@Suite("Hex and base64url encodings", .timeLimit(.minutes(1)))
struct EncodingTests {
    @Test("hex is lowercase, two digits per byte, as String(format: \"%02x\") gave")
    func hex() {
        #expect(Hex.encode([UInt8]()) == "")
        #expect(Hex.encode([0x00, 0x0f, 0xa0, 0xff]) == "000fa0ff")
        #expect(Hex.encode(0...255).count == 512)
        #expect(Hex.encode([0xde, 0xad, 0xbe, 0xef].prefix(2)) == "dead")
    }

    @Test("random ids have the asked length, decode back to that many bytes, and differ")
    func randomIDs() {
        for count in [1, 7, 8, 9, 16, 32] {
            let id = Base64URL.random(byteCount: count)
            #expect(Base64URL.decode(id)?.count == count, "\(count) bytes")
            #expect(!id.contains("=") && !id.contains("+") && !id.contains("/"))
        }
        let ids = Set((0..<1_000).map { _ in Base64URL.random(byteCount: 16) })
        #expect(ids.count == 1_000)
        // Every byte value shows up across many ids: the draws are not stuck on a few bytes of each word.
        var seen = Set<UInt8>()
        for _ in 0..<200 { seen.formUnion(Base64URL.decode(Base64URL.random(byteCount: 16)) ?? []) }
        #expect(seen.count > 250)
    }
}
