import NotifyCore

extension ReadinessReport {
    /// Checks that the queue's scripts are in Redis' script cache, loading any that are missing (after a restart
    /// or failover the cache is empty; calls would reload them anyway, but ready should mean ready).
    public static func delayQueue(_ queue: DelayQueue) async -> (name: String, problem: String?) {
        do {
            try await queue.prepare()
            return ("delayQueueScripts", nil)
        } catch {
            return ("delayQueueScripts", "\(error)")
        }
    }
}
