import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Where pushes may go. Device URLs (Web Push endpoints, webhooks) come from apps, so by default only `https`
/// to public addresses is allowed: never loopback, private, link-local (cloud metadata lives there), shared,
/// multicast or reserved ranges. The check applies to the *resolved* addresses, not the name, since a name can
/// point anywhere; redirects are never followed. `allowLoopback` (what `notify dev` turns on) lets a local
/// receiver work, over plain `http` too.
public struct EgressPolicy: Sendable, Hashable {
    public var allowLoopback: Bool

    public init(allowLoopback: Bool = false) {
        self.allowLoopback = allowLoopback
    }

    /// Checks what can be checked before resolving: scheme, host, no credentials in the URL, and a literal
    /// address. Registration calls it too, so a device that could never be sent to is refused at once.
    public func checkURL(_ url: URL) throws(EgressError) {
        guard let scheme = url.scheme?.lowercased(), let host = url.host, !host.isEmpty else {
            throw EgressError("the URL needs https:// and a host")
        }
        guard url.user == nil, url.password == nil else { throw EgressError("the URL must not carry credentials") }
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        let literal = Self.parse(bare)
        let isLocalhost = host.lowercased() == "localhost"
        let isLoopbackHost = isLocalhost || literal.map(Self.isLoopback) == true
        switch scheme {
        case "https": break
        case "http" where self.allowLoopback && isLoopbackHost: break
        default: throw EgressError("only https URLs are allowed")
        }
        if isLocalhost, !self.allowLoopback {
            throw EgressError("the URL points at this machine")
        }
        if let literal { try self.checkAddress(literal) }
    }

    /// Checks one resolved address (4 or 16 octets).
    public func checkAddress(_ address: [UInt8]) throws(EgressError) {
        if Self.isLoopback(address) {
            guard self.allowLoopback else { throw EgressError("the address is loopback") }
            return
        }
        if let reason = Self.forbiddenRange(address) { throw EgressError("the address is \(reason)") }
    }

    /// Checks an address given as text (`93.184.216.34`, `2606:2800::1`).
    public func checkAddress(_ text: String) throws(EgressError) {
        guard let address = Self.parse(text) else { throw EgressError("not an IP address") }
        try self.checkAddress(address)
    }

    /// Whether `host` is an IP address rather than a name.
    public static func isAddressLiteral(_ host: String) -> Bool { Self.parse(host) != nil }

    static func parse(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }

    static func isLoopback(_ address: [UInt8]) -> Bool {
        if address.count == 4 { return address[0] == 127 }
        if let v4 = Self.embeddedV4(address) { return v4[0] == 127 }
        return address == [UInt8](repeating: 0, count: 15) + [1]
    }

    /// IPv4 inside an IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d), SIIT (::ffff:0:a.b.c.d) or
    /// NAT64 (64:ff9b::a.b.c.d) IPv6 address, or a 6to4 one (2002:aabb:ccdd::).
    static func embeddedV4(_ address: [UInt8]) -> [UInt8]? {
        guard address.count == 16 else { return nil }
        let prefix = Array(address[0..<12])
        let zeros = [UInt8](repeating: 0, count: 10)
        let mapped = zeros + [0xff, 0xff]
        let compatible = zeros + [0, 0]
        let siit = [UInt8](repeating: 0, count: 8) + [0xff, 0xff, 0, 0]
        let nat64: [UInt8] = [0x00, 0x64, 0xff, 0x9b] + [UInt8](repeating: 0, count: 8)
        if prefix == compatible, address[12...].allSatisfy({ $0 == 0 }) || address[12...] == [0, 0, 0, 1] {
            return nil  // :: and ::1 are not IPv4
        }
        if [mapped, compatible, siit, nat64].contains(prefix) { return Array(address[12...]) }
        if address[0] == 0x20, address[1] == 0x02 { return Array(address[2..<6]) }
        return nil
    }

    static func forbiddenRange(_ address: [UInt8]) -> String? {
        if let v4 = Self.embeddedV4(address) { return Self.forbiddenRange(v4) }
        if address.count == 4 {
            let (a, b) = (address[0], address[1])
            switch true {
            case a == 0: return "in 0.0.0.0/8 (this network)"
            case a == 10, a == 172 && (16...31).contains(b), a == 192 && b == 168: return "private"
            case a == 100 && (64...127).contains(b): return "shared address space (carrier NAT)"
            case a == 169 && b == 254: return "link-local (cloud metadata lives there)"
            case a == 192 && b == 0 && address[2] == 0: return "IETF protocol assignments"
            case a == 198 && (18...19).contains(b): return "benchmarking"
            case a >= 224: return "multicast or reserved"
            default: return nil
            }
        }
        guard address.count == 16 else { return "not an IP address" }
        if address.allSatisfy({ $0 == 0 }) { return "unspecified" }
        switch true {
        case address[0] & 0xfe == 0xfc: return "unique local (private)"
        case address[0] == 0xfe && address[1] & 0xc0 == 0x80: return "link-local"
        case address[0] == 0xfe && address[1] & 0xc0 == 0xc0: return "site-local"
        case address[0..<4] == [0x00, 0x64, 0xff, 0x9b] && address[4] == 0x00 && address[5] == 0x01:
            return "local-use NAT64 (64:ff9b:1::/48)"
        case address[0..<8] == [0x01, 0x00, 0, 0, 0, 0, 0, 0]: return "discard-only (100::/64)"
        case address[0] == 0xff: return "multicast"
        default: return nil
        }
    }
}

public struct EgressError: Error, Sendable, Hashable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
