/// Placeholder of the Plexer part; filled by its own issue.
public enum PlexerModule {}
