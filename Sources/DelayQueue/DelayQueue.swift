/// The Redis sorted-set delay queue (schedule, cancel, claim with lease, retry, dead letters).
///
/// Filled by its own issue; the target exists so the package layout matches the design.
public enum DelayQueueModule {}
