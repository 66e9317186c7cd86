#if canImport(Glibc)
    import Glibc
#endif

/// The process's limit on open files: every stream, WebSocket and upstream connection is one, and Linux starts
/// processes with a soft limit (often 1,024) far below what a server holds. Raised at start, as Go and nginx's
/// `worker_rlimit_nofile` do.
public enum OpenFileLimit {
    /// Raises the soft limit to the hard limit, or both to `wanted` where the process may (root, as the
    /// benchmarks need for tens of thousands of streams); returns the soft limit in force afterwards.
    @discardableResult
    public static func raise(to wanted: Int? = nil) -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 0 }
        if let wanted, limit.rlim_max < rlim_t(wanted) {
            var higher = rlimit(rlim_cur: rlim_t(wanted), rlim_max: rlim_t(wanted))
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &higher) == 0 { return wanted }
        }
        limit.rlim_cur = limit.rlim_max
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 0 }
        return Int(limit.rlim_cur)
    }
}
