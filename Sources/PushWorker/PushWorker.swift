/// Placeholder of the PushWorker part; filled by its own issue.
public enum PushWorkerModule {}
