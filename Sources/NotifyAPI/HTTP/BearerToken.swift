import Hummingbird

/// The credentials of `Authorization: Bearer <token>`.
enum BearerToken {
    static func from(_ request: Request) throws(Problem) -> String {
        guard let header = request.headers[.authorization] else {
            throw Problem.unauthorized("the Authorization header is missing")
        }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer", !parts[1].isEmpty else {
            throw Problem.unauthorized("the Authorization header must be: Bearer <token>")
        }
        return String(parts[1])
    }
}
