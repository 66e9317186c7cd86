/// An error of the delay queue; the code's raw value is safe as a metric label.
public struct DelayQueueError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable {
        /// A job id, payload or time that the queue refuses (the message says which rule).
        case invalidJob
        /// Redis answered with something the scripts never return.
        case unexpectedReply
        /// The Redis server is older than the scripts need.
        case unsupportedRedis
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "delay queue \(self.code.rawValue): \(self.message)" }
}
