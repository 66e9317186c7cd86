import AsyncHTTPClient
import Foundation
import NIOCore
import NIOPosix
import NotifyCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// HTTP clients for URLs that apps supplied (Web Push endpoints, webhooks), held to the ``EgressPolicy`` on the
/// address actually connected to: a host name is resolved here, every address it resolves to is checked, and the
/// client for it connects to the checked address only (AHC's DNS override, keyed by the lowercased host the
/// request is rebuilt with, the name kept for TLS), so a name that re-resolves to an internal address between
/// check and connect (DNS rebinding) cannot get through. Redirects are never followed. Resolutions are reused for
/// a minute, one lookup per host at a time, on a pool of their own; clients are pooled per host.
public actor EgressClients {
    /// A client pinned to a checked address, and the URL to send to (with the host as the pin knows it).
    public struct Pinned: Sendable {
        public var client: HTTPClient
        public var url: String
        public var host: String
    }

    /// Why a URL is not sent to; `transient` when trying later may work (the resolver failed).
    public struct Refusal: Error, Sendable {
        public var description: String
        public var transient: Bool

        public var outcome: PushOutcome {
            self.transient
                ? .retry(reason: self.description, retryAfterMs: nil, backoff: .network)
                : .deadLetter(reason: "refused: \(self.description)")
        }
    }

    private struct Entry {
        var client: HTTPClient
        var address: String
        var checkedAt: ContinuousClock.Instant
    }

    public nonisolated let policy: EgressPolicy
    private let configuration: HTTPClient.Configuration
    private let resolverPool: NIOThreadPool
    /// Pinned clients by host. Changed only on the actor; read without it, so a send to a host checked within
    /// the minute (nearly every send) does not queue behind the actor.
    private nonisolated let byHost = Mutex<[String: Entry]>([:])
    private nonisolated let literalClient = Mutex<HTTPClient?>(nil)
    private var resolving: [String: Task<Result<[String], Refusal>, Never>] = [:]
    private var retired: [HTTPClient] = []

    static let recheckAfter: Duration = .seconds(60)
    static let maxHosts = 512

    public init(policy: EgressPolicy, configuration: HTTPClient.Configuration) {
        self.policy = policy
        var configuration = configuration
        configuration.redirectConfiguration = .disallow
        self.configuration = configuration
        // getaddrinfo blocks: lookups get threads of their own, so a slow name server never holds NIO's pool.
        self.resolverPool = NIOThreadPool(numberOfThreads: 4)
        self.resolverPool.start()
    }

    /// The client to send to `url` with, once the URL and its host's addresses passed the policy.
    public nonisolated func client(for url: URL) async -> Result<Pinned, Refusal> {
        do {
            try self.policy.checkURL(url)
        } catch {
            return .failure(Refusal(description: error.description, transient: false))
        }
        guard let rawHost = url.host, !rawHost.isEmpty else {
            return .failure(Refusal(description: "the URL has no host", transient: false))
        }
        // The pin is keyed by the lowercased host, so the request must name the host exactly so.
        let host = rawHost.lowercased()
        var text = url.absoluteString
        if host != rawHost {
            guard var components = URLComponents(url: url, resolvingAgainstBaseURL: false) else {
                return .failure(Refusal(description: "the URL cannot be rebuilt", transient: false))
            }
            components.host = host
            guard let rebuilt = components.string else {
                return .failure(Refusal(description: "the URL cannot be rebuilt", transient: false))
            }
            text = rebuilt
        }
        let bare = host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host
        if EgressPolicy.isAddressLiteral(bare) {
            // Checked by checkURL already; nothing to resolve.
            if let client = self.literalClient.withLock({ $0 }) {
                return .success(Pinned(client: client, url: text, host: host))
            }
            return .success(Pinned(client: await self.makeLiteralClient(), url: text, host: host))
        }
        if let entry = self.byHost.withLock({ $0[host] }), ContinuousClock.now - entry.checkedAt < Self.recheckAfter {
            return .success(Pinned(client: entry.client, url: text, host: host))
        }
        return await self.pin(url, host: host, text: text)
    }

    private func makeLiteralClient() -> HTTPClient {
        if let client = self.literalClient.withLock({ $0 }) { return client }
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: self.configuration)
        self.literalClient.withLock { $0 = client }
        return client
    }

    /// Resolves `host` (one lookup at a time), checks its addresses and pins a client to one of them.
    private func pin(_ url: URL, host: String, text: String) async -> Result<Pinned, Refusal> {
        let now = ContinuousClock.now
        if let entry = self.byHost.withLock({ $0[host] }), now - entry.checkedAt < Self.recheckAfter {
            return .success(Pinned(client: entry.client, url: text, host: host))
        }
        let port = url.port ?? (url.scheme == "http" ? 80 : 443)
        let lookup: Task<Result<[String], Refusal>, Never>
        if let running = self.resolving[host] {
            lookup = running
        } else {
            let pool = self.resolverPool
            lookup = Task { await Self.resolve(host, port: port, on: pool) }
            self.resolving[host] = lookup
        }
        let resolved = await lookup.value
        if self.resolving[host] == lookup { self.resolving[host] = nil }
        let addresses: [String]
        switch resolved {
        case .failure(let refusal): return .failure(refusal)
        case .success(let list): addresses = list
        }
        for address in addresses {
            do {
                try self.policy.checkAddress(address)
            } catch {
                return .failure(
                    Refusal(
                        description: "\(host) resolves to an address that is refused: \(error.description)",
                        transient: false))
            }
        }
        if let entry = self.byHost.withLock({ $0[host] }), addresses.contains(entry.address) {
            // Still one of the name's addresses (round-robin DNS reorders them): keep the client and its connections.
            self.byHost.withLock { $0[host]?.checkedAt = now }
            return .success(Pinned(client: entry.client, url: text, host: host))
        }
        // Prefer IPv4: many hosts have no IPv6 route out.
        guard let pin = addresses.first(where: { !$0.contains(":") }) ?? addresses.first else {
            return .failure(Refusal(description: "\(host) does not resolve", transient: true))
        }
        var configuration = self.configuration
        configuration.dnsOverride = [host: pin]
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        let replaced = self.byHost.withLock { byHost -> [HTTPClient] in
            var replaced: [HTTPClient] = []
            if let old = byHost.removeValue(forKey: host) { replaced.append(old.client) }
            if byHost.count >= Self.maxHosts, let oldest = byHost.min(by: { $0.value.checkedAt < $1.value.checkedAt }) {
                byHost.removeValue(forKey: oldest.key)
                replaced.append(oldest.value.client)
            }
            byHost[host] = Entry(client: client, address: pin, checkedAt: now)
            return replaced
        }
        for old in replaced { self.retire(old) }
        return .success(Pinned(client: client, url: text, host: host))
    }

    /// Shuts every client down (after in-flight requests end).
    public func shutdown() async {
        var clients = self.byHost.withLock { byHost in
            defer { byHost = [:] }
            return byHost.values.map(\.client)
        }
        clients += self.retired
        if let literal = self.literalClient.withLock({ $0 }) { clients.append(literal) }
        self.retired = []
        self.literalClient.withLock { $0 = nil }
        for client in clients {
            try? await client.shutdown()
        }
        try? await self.resolverPool.shutdownGracefully()
    }

    /// A client replaced while requests may still run on it: shut down once those have had their time.
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

    /// Every address `host` resolves to, as text.
    static func resolve(_ host: String, port: Int, on pool: NIOThreadPool) async -> Result<[String], Refusal> {
        await withCheckedContinuation { continuation in
            pool.submit { state in
                guard case .active = state else {
                    continuation.resume(returning: .failure(Refusal(description: "shutting down", transient: true)))
                    return
                }
                continuation.resume(returning: Self.getaddrinfo(host, port: port))
            }
        }
    }

    private static func getaddrinfo(_ host: String, port: Int) -> Result<[String], Refusal> {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = Glibc.getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let list else {
            // No such name is final; a resolver that did not answer may answer later.
            let final = status == EAI_NONAME || status == EAI_FAIL
            return .failure(
                Refusal(
                    description: "\(host) does not resolve: \(String(cString: gai_strerror(status)))", transient: !final
                ))
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
