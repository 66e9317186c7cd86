import AsyncHTTPClient
import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import NotifyCore

#if canImport(Glibc)
    import Glibc
#endif

/// HTTP clients for URLs that apps supplied (Web Push endpoints, webhooks), held to the ``EgressPolicy`` on the
/// address actually connected to: a host name is resolved here, every address it resolves to is checked, and the
/// client for it connects to the checked address only (AHC's DNS override, with the name kept for TLS), so a name
/// that re-resolves to an internal address between check and connect (DNS rebinding) cannot get through.
/// Redirects are never followed. Resolutions are reused for a minute; clients are pooled per host.
public actor EgressClients {
    private struct Entry {
        var client: HTTPClient
        var address: String
        var checkedAt: ContinuousClock.Instant
    }

    public nonisolated let policy: EgressPolicy
    private let configuration: HTTPClient.Configuration
    private var byHost: [String: Entry] = [:]
    private var literalClient: HTTPClient?
    private var retired: [HTTPClient] = []

    static let recheckAfter: Duration = .seconds(60)
    static let maxHosts = 512

    public init(policy: EgressPolicy, configuration: HTTPClient.Configuration) {
        self.policy = policy
        var configuration = configuration
        configuration.redirectConfiguration = .disallow
        self.configuration = configuration
    }

    /// The client to send to `url` with, once the URL and its host's addresses passed the policy.
    public func client(for url: URL) async throws(EgressError) -> HTTPClient {
        try self.policy.checkURL(url)
        guard let host = url.host?.trimmingCharacters(in: CharacterSet(charactersIn: "[]")) else {
            throw EgressError("the URL has no host")
        }
        if EgressPolicy.isAddressLiteral(host) {
            // Checked by checkURL already; nothing to resolve.
            if let client = self.literalClient { return client }
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: self.configuration)
            self.literalClient = client
            return client
        }
        let key = host.lowercased()
        let now = ContinuousClock.now
        if let entry = self.byHost[key], now - entry.checkedAt < Self.recheckAfter { return entry.client }
        let addresses = try await Self.resolve(key, port: url.port ?? (url.scheme == "http" ? 80 : 443))
        guard let first = addresses.first else { throw EgressError("\(key) does not resolve") }
        for address in addresses {
            do {
                try self.policy.checkAddress(address)
            } catch {
                throw EgressError("\(key) resolves to an address that is refused: \(error.description)")
            }
        }
        if let entry = self.byHost[key], entry.address == first {
            self.byHost[key]?.checkedAt = now
            return entry.client
        }
        if let old = self.byHost.removeValue(forKey: key) { self.retire(old.client) }
        if self.byHost.count >= Self.maxHosts,
            let oldest = self.byHost.min(by: { $0.value.checkedAt < $1.value.checkedAt })
        {
            self.byHost.removeValue(forKey: oldest.key)
            self.retire(oldest.value.client)
        }
        var configuration = self.configuration
        configuration.dnsOverride = [key: first]
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        self.byHost[key] = Entry(client: client, address: first, checkedAt: now)
        return client
    }

    /// Shuts every client down (after in-flight requests end).
    public func shutdown() async {
        var clients = self.byHost.values.map(\.client) + self.retired
        if let literal = self.literalClient { clients.append(literal) }
        self.byHost = [:]
        self.retired = []
        self.literalClient = nil
        for client in clients {
            try? await client.shutdown()
        }
    }

    /// A client replaced while requests may still run on it: shut down a while later.
    private func retire(_ client: HTTPClient) {
        self.retired.append(client)
        Task {
            try? await Task.sleep(for: Self.recheckAfter)
            await self.shutdownRetired(client)
        }
    }

    private func shutdownRetired(_ client: HTTPClient) async {
        guard let index = self.retired.firstIndex(where: { $0 === client }) else { return }
        self.retired.remove(at: index)
        try? await client.shutdown()
    }

    /// Every address `host` resolves to, as text, via getaddrinfo on NIO's blocking pool.
    static func resolve(_ host: String, port: Int) async throws(EgressError) -> [String] {
        let result: Result<[String], EgressError> = await withCheckedContinuation { continuation in
            NIOThreadPool.singleton.submit { _ in
                continuation.resume(returning: Self.getaddrinfo(host, port: port))
            }
        }
        return try result.get()
    }

    private static func getaddrinfo(_ host: String, port: Int) -> Result<[String], EgressError> {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = Glibc.getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let list else {
            return .failure(EgressError("\(host) does not resolve: \(String(cString: gai_strerror(status)))"))
        }
        defer { freeaddrinfo(list) }
        var addresses: [String] = []
        var cursor: UnsafeMutablePointer<addrinfo>? = list
        while let info = cursor {
            var buffer = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            if getnameinfo(
                info.pointee.ai_addr, info.pointee.ai_addrlen, &buffer, socklen_t(buffer.count), nil, 0, NI_NUMERICHOST)
                == 0
            {
                let text = String(cString: buffer)
                if !addresses.contains(text) { addresses.append(text) }
            }
            cursor = info.pointee.ai_next
        }
        return .success(addresses)
    }
}
