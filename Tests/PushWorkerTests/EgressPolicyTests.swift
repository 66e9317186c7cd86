import Foundation
import NotifyCore
import Testing

@Suite("Egress policy", .timeLimit(.minutes(1)))
struct EgressPolicyTests {
    static let refused = [
        "127.0.0.1", "127.1.2.3", "10.0.0.8", "172.16.0.1", "172.31.255.255", "192.168.1.1", "169.254.169.254",
        "100.64.0.1", "0.0.0.0", "224.0.0.1", "255.255.255.255", "::1", "::", "fd00:ec2::254", "fc00::1",
        "fe80::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:169.254.169.254", "64:ff9b::10.0.0.1", "fec0::1",
        "64:ff9b:1::1",
        "2002:a00:1::", "::10.0.0.1", "::ffff:0:10.0.0.1", "100::1",
    ]
    static let allowed = ["93.184.216.34", "8.8.8.8", "172.32.0.1", "2606:2800:220:1:248:1893:25c8:1946"]

    @Test("private, loopback, link-local, metadata, multicast and mapped addresses are refused; public ones pass")
    func addresses() {
        let policy = EgressPolicy()
        for address in Self.refused {
            #expect(throws: EgressError.self, "\(address)") { try policy.checkAddress(address) }
        }
        for address in Self.allowed {
            #expect(throws: Never.self, "\(address)") { try policy.checkAddress(address) }
        }
    }

    @Test("only https with a host and no credentials; http and loopback only when loopback is allowed")
    func urls() {
        let strict = EgressPolicy()
        let dev = EgressPolicy(allowLoopback: true)
        let cases: [(String, Bool, Bool)] = [
            ("https://push.example.net/abc", true, true),
            ("http://push.example.net/abc", false, false),
            ("https://user:pw@push.example.net/", false, false),
            ("https://127.0.0.1:8443/hook", false, true),
            ("http://127.0.0.1:8080/hook", false, true),
            ("http://localhost:8080/hook", false, true),
            ("https://[::1]/hook", false, true),
            ("https://10.1.2.3/hook", false, false),
            ("https://[fe80::1]/hook", false, false),
            ("ftp://push.example.net/", false, false),
            ("https:///nohost", false, false),
        ]
        for (text, strictAllows, devAllows) in cases {
            let url = URL(string: text)!
            #expect(((try? strict.checkURL(url)) != nil) == strictAllows, "strict \(text)")
            #expect(((try? dev.checkURL(url)) != nil) == devAllows, "dev \(text)")
        }
    }
}
