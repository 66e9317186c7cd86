/// A push job's id: one per (notification, recipient), so scheduling is idempotent and an ack can find the job
/// without a lookup. Written `<notificationID>/<userID>`.
public struct JobID: Sendable, Hashable, CustomStringConvertible {
    public let notificationID: String
    public let userID: String

    /// Validates both parts: notification ids are `[A-Za-z0-9_-]{1,64}`; user ids are 1–128 characters of
    /// `[A-Za-z0-9._@:+-]` (no braces, slashes or spaces, which would break keys and hash tags).
    public init(notificationID: String, userID: String) throws(DelayQueueError) {
        guard Self.isValidNotificationID(notificationID) else {
            throw DelayQueueError(.invalidJob, "notification id must be 1-64 characters of A-Z a-z 0-9 _ -")
        }
        guard Self.isValidUserID(userID) else {
            throw DelayQueueError(.invalidJob, "user id must be 1-128 characters of A-Z a-z 0-9 . _ @ : + -")
        }
        self.notificationID = notificationID
        self.userID = userID
    }

    /// Parses the `<notificationID>/<userID>` form.
    public init(_ text: String) throws(DelayQueueError) {
        guard let slash = text.firstIndex(of: "/") else {
            throw DelayQueueError(.invalidJob, "job id must look like <notificationID>/<userID>")
        }
        try self.init(
            notificationID: String(text[..<slash]), userID: String(text[text.index(after: slash)...]))
    }

    /// Parses the `<notificationID>/<userID>` form; `nil` when it is not one.
    public init?(validating text: String) {
        do {
            try self.init(text)
        } catch {
            return nil
        }
    }

    public var description: String { "\(self.notificationID)/\(self.userID)" }

    public static func isValidNotificationID(_ text: String) -> Bool {
        (1...64).contains(text.utf8.count)
            && text.utf8.allSatisfy { Self.isAlphanumeric($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") }
    }

    public static func isValidUserID(_ text: String) -> Bool {
        let extra: Set<UInt8> = Set("._@:+-".utf8)
        return (1...128).contains(text.utf8.count)
            && text.utf8.allSatisfy { Self.isAlphanumeric($0) || extra.contains($0) }
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }
}
