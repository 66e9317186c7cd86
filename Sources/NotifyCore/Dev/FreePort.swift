import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Finds a TCP port on 127.0.0.1 that nothing listens on right now.
///
/// The port is only free at the moment of the check; a caller that loses the race retries with another one.
public enum FreePort {
    /// Ports this process handed out already: the kernel may offer a closed port again at once, and two servers
    /// started in parallel (tests) must not both get it.
    private static let handedOut = Mutex<Set<Int>>([])

    /// Binds port 0, reads which port the kernel chose, and closes the socket again. Never returns the same port
    /// twice in one process.
    public static func find() throws(LocalRedisServerError) -> Int {
        for _ in 0..<100 {
            let (descriptor, port) = try Self.bindLoopback()
            close(descriptor)
            if Self.handedOut.withLock({ $0.insert(port).inserted }) { return port }
        }
        throw LocalRedisServerError("no loopback port was free")
    }

    /// Binds a TCP socket to 127.0.0.1 on a port the kernel chooses, without listening, and returns it open: while
    /// it stays open nobody else can take the port, and connections to it are refused.
    public static func bindLoopback() throws(LocalRedisServerError) -> (descriptor: Int32, port: Int) {
        #if canImport(Glibc)
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
            let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw LocalRedisServerError("socket() failed: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard bound == 0, named == 0 else {
            close(fd)
            throw LocalRedisServerError("binding a loopback port failed: errno \(errno)")
        }
        return (fd, Int(UInt16(bigEndian: address.sin_port)))
    }
}
