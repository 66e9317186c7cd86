import NotifyCore

#if canImport(Glibc)
    import Glibc
#endif

/// A loopback port that refuses connections for as long as this value is open: a socket bound to it but not
/// listening. Unlike a "free" port, no parallel test can start a server on it meanwhile.
public final class RefusingPort: Sendable {
    public let port: Int
    private let descriptor: Int32

    public init() throws {
        (self.descriptor, self.port) = try FreePort.bindLoopback()
    }

    deinit {
        close(self.descriptor)
    }
}
