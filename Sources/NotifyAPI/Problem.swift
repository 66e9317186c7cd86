import Foundation
import Hummingbird

/// An error answered as RFC 9457 problem JSON (`application/problem+json`).
///
/// `type` is a stable URI per failure, so clients can branch on it; `detail` says what to fix in this request and
/// never echoes tokens, keys or payloads.
public struct Problem: HTTPResponseError, Sendable, Hashable {
    /// Stable identifier of the failure, a URI reference such as `/problems/payload-too-large` (relative to the
    /// API's base URL, where its documentation can be served).
    public var type: String
    /// Short, fixed summary of the failure type.
    public var title: String
    public var status: HTTPResponse.Status
    /// What went wrong with this request.
    public var detail: String?
    /// Extra members (e.g. `invalidFields`), merged into the top-level object.
    public var extensions: [String: ProblemValue]

    public init(
        type: String, title: String, status: HTTPResponse.Status, detail: String? = nil,
        extensions: [String: ProblemValue] = [:]
    ) {
        self.type = type
        self.title = title
        self.status = status
        self.detail = detail
        self.extensions = extensions
    }

    /// Base of every `type` URI reference.
    public static let typeBase = "/problems/"

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        Response(
            status: self.status, headers: self.headerFields,
            body: ResponseBody(byteBuffer: try self.body(instance: request.uri.path)))
    }

    /// The problem JSON, with `instance` set to the request's path.
    public func body(instance: String) throws -> ByteBuffer {
        var object: [String: ProblemValue] = self.extensions
        object["type"] = .string(self.type)
        object["title"] = .string(self.title)
        object["status"] = .integer(Int(self.status.code))
        if let detail = self.detail { object["detail"] = .string(detail) }
        object["instance"] = .string(instance)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return ByteBuffer(bytes: try encoder.encode(object))
    }

    /// The response's header fields: the problem media type, and the auth scheme with a 401.
    public var headerFields: HTTPFields {
        var headers: HTTPFields = [.contentType: "application/problem+json"]
        if self.status == .unauthorized {
            headers[.wwwAuthenticate] = "Bearer"
        }
        return headers
    }
}

/// A JSON value in a problem's extension members.
public enum ProblemValue: Sendable, Hashable, Encodable {
    case string(String)
    case integer(Int)
    case strings([String])

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let text): try container.encode(text)
        case .integer(let number): try container.encode(number)
        case .strings(let texts): try container.encode(texts)
        }
    }
}

extension Problem {
    /// The request has no valid credentials (401, with `WWW-Authenticate: Bearer`).
    public static func unauthorized(_ detail: String) -> Problem {
        Problem(
            type: Self.typeBase + "unauthorized", title: "Authentication required", status: .unauthorized,
            detail: detail)
    }

    /// The credentials are valid but do not allow this (403).
    public static func forbidden(_ detail: String) -> Problem {
        Problem(type: Self.typeBase + "forbidden", title: "Not allowed", status: .forbidden, detail: detail)
    }

    /// The body or a parameter is malformed or breaks a rule (400); `invalidFields` names the fields.
    public static func invalidRequest(_ detail: String, fields: [String] = []) -> Problem {
        Problem(
            type: Self.typeBase + "invalid-request", title: "Invalid request", status: .badRequest, detail: detail,
            extensions: fields.isEmpty ? [:] : ["invalidFields": .strings(fields)])
    }

    /// The body, or one field of it, is larger than its limit (413).
    public static func payloadTooLarge(limitBytes: Int, field: String? = nil) -> Problem {
        Problem(
            type: Self.typeBase + "payload-too-large", title: "Payload too large", status: .contentTooLarge,
            detail: "\(field ?? "the request body") is limited to \(limitBytes) bytes",
            extensions: ["limitBytes": .integer(limitBytes)].merging(
                field.map { ["invalidFields": .strings([$0])] } ?? [:], uniquingKeysWith: { a, _ in a }))
    }

    /// More recipients than one request may have (413).
    public static func tooManyRecipients(_ count: Int, limit: Int) -> Problem {
        Problem(
            type: Self.typeBase + "too-many-recipients", title: "Too many recipients", status: .contentTooLarge,
            detail: "\(count) recipients; one request may have at most \(limit), split it",
            extensions: ["limit": .integer(limit), "invalidFields": .strings(["recipients"])])
    }

    /// The request conflicts with an earlier one (409).
    public static func conflict(_ detail: String) -> Problem {
        Problem(type: Self.typeBase + "conflict", title: "Conflict", status: .conflict, detail: detail)
    }

    /// The resource does not exist, or is not visible to the caller (404).
    public static func notFound(_ detail: String) -> Problem {
        Problem(type: Self.typeBase + "not-found", title: "Not found", status: .notFound, detail: detail)
    }

    /// A dependency (Redis) is unavailable; the request may be retried (503).
    public static func unavailable(_ detail: String) -> Problem {
        Problem(
            type: Self.typeBase + "unavailable", title: "Temporarily unavailable", status: .serviceUnavailable,
            detail: detail)
    }
}
