import Foundation
import RedisClient

#if canImport(Glibc)
    import Glibc
#endif

/// CPU time used so far by this process and by a Redis server, in seconds: the difference over a phase, per
/// unit of work, is what the phase costs whatever else shares the cores.
struct CPUUsage: Sendable {
    var process: Double
    var redis: Double

    static func sample(_ client: RedisClient) async throws -> CPUUsage {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let process =
            Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6 + Double(usage.ru_stime.tv_sec)
            + Double(usage.ru_stime.tv_usec) / 1e6
        let info = try await client.send("INFO", "cpu").throwingIfError().string ?? ""
        var redis = 0.0
        for line in info.split(whereSeparator: \.isNewline) {
            let parts = line.split(separator: ":")
            guard parts.count == 2, parts[0] == "used_cpu_sys" || parts[0] == "used_cpu_user" else { continue }
            redis += Double(parts[1].trimmingCharacters(in: .whitespaces)) ?? 0
        }
        return CPUUsage(process: process, redis: redis)
    }
}
