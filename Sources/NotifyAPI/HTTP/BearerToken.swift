import Hummingbird

/// The credentials of `Authorization: Bearer <token>`.
public enum BearerToken {
    static func from(_ request: Request) throws(Problem) -> String {
        try Self.from(header: request.headers[.authorization])
    }

    public static func from(header: String?) throws(Problem) -> String {
        guard let header else {
            throw Problem.unauthorized("the Authorization header is missing")
        }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer", !parts[1].isEmpty else {
            throw Problem.unauthorized("the Authorization header must be: Bearer <token>")
        }
        return String(parts[1])
    }

    /// An app user's token: `Authorization: Bearer <jwt>`, or without that header `?access_token=` (browsers'
    /// EventSource cannot set headers).
    static func user(authorization: String?, accessToken: String?) throws(Problem) -> String {
        if authorization == nil, let accessToken { return accessToken }
        return try Self.from(header: authorization)
    }
}
