/// Placeholder of the NotifyAPI part; filled by its own issue.
public enum NotifyAPIModule {}
