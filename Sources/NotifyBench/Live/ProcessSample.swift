import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// CPU time and resident memory of a group of processes (a server and its helpers), read from `/proc`: what a
/// phase costs them is the difference between two samples.
struct ProcessSample: Sendable {
    var cpuSeconds: Double
    var rssBytes: Int
    var at: ContinuousClock.Instant

    static func take(_ pids: [Int32]) -> ProcessSample {
        var cpu = 0.0
        var rss = 0
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        for pid in pids {
            if let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            {
                // Fields after the command name: state is field 3, utime 14 and stime 15.
                let fields = stat[stat.index(after: close)...].split(separator: " ")
                if fields.count > 12 { cpu += ((Double(fields[11]) ?? 0) + (Double(fields[12]) ?? 0)) / ticks }
            }
            if let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
                let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
            {
                rss += (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) * 1_024
            }
        }
        return ProcessSample(cpuSeconds: cpu, rssBytes: rss, at: .now)
    }

    /// Share of one core used between `earlier` and this sample (1 = one core busy).
    func cores(since earlier: ProcessSample) -> Double {
        let wall = earlier.at.duration(to: self.at)
        let seconds = Double(wall.components.seconds) + Double(wall.components.attoseconds) / 1e18
        return seconds > 0 ? (self.cpuSeconds - earlier.cpuSeconds) / seconds : 0
    }

    /// The children of `pid` (nginx's workers under its master).
    static func children(of pid: Int32) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { entry -> Int32? in
            guard let child = Int32(entry),
                let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { return nil }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.count > 1 && Int32(fields[1]) == pid ? child : nil
        }
    }
}
