/// Why a user token was refused. The reason is safe to show the caller: it never contains the token.
public struct UserTokenError: Error, Sendable, Hashable, CustomStringConvertible {
    public var reason: String

    public init(_ reason: String) {
        self.reason = reason
    }

    public var description: String { self.reason }
}
