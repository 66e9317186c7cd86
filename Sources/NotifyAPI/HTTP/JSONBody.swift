import Foundation
import Hummingbird
import NIOCore
import NotifyCore

/// Reading JSON requests and writing JSON responses, with the body limit and precise decoding errors.
enum JSONBody {
    static func decode<T: Decodable>(
        _ type: T.Type, from request: Request, limit: Int,
        dates: JSONDecoder.DateDecodingStrategy = .deferredToDate
    ) async throws -> T {
        var request = request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw Problem.payloadTooLarge(limitBytes: limit)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw Problem.payloadTooLarge(limitBytes: limit)
        }
        if let contentType = request.headers[.contentType], !contentType.lowercased().hasPrefix("application/json") {
            throw Problem(
                type: Problem.typeBase + "unsupported-media-type", title: "Unsupported media type",
                status: .unsupportedMediaType, detail: "send the body as application/json")
        }
        // JSON text is UTF-8 (RFC 8259 §8.1). Checked first: the decoder would report a bad byte inside a free-form
        // value (a payload string) as a type mismatch of that value, which misleads.
        guard String(validating: buffer.readableBytesView, as: UTF8.self) != nil else {
            throw Problem.invalidRequest("the body is not valid UTF-8")
        }
        do {
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = dates
            return try decoder.decode(T.self, from: Data(buffer.readableBytesView))
        } catch let error as DecodingError {
            throw Self.problem(for: error)
        } catch let error as UnknownMembersError {
            throw error.problem
        }
    }

    static func problem(for error: DecodingError) -> Problem {
        func path(_ codingPath: [any CodingKey]) -> String {
            codingPath.reduce("") { text, key in
                if let index = key.intValue { return text + "[\(index)]" }
                return text.isEmpty ? key.stringValue : text + "." + key.stringValue
            }
        }
        switch error {
        case .dataCorrupted(let context) where context.codingPath.isEmpty:
            return .invalidRequest("the body is not valid JSON")
        case .dataCorrupted(let context):
            return .invalidRequest(
                "\(path(context.codingPath)): \(context.debugDescription)", fields: [path(context.codingPath)])
        case .keyNotFound(let key, let context):
            let field = path(context.codingPath + [key])
            return .invalidRequest("\(field) is required", fields: [field])
        case .typeMismatch(let type, let context), .valueNotFound(let type, let context):
            let field = path(context.codingPath)
            return .invalidRequest(
                "\(field.isEmpty ? "the body" : field) must be \(Self.describe(type))", fields: [field])
        @unknown default:
            return .invalidRequest("the body does not match the schema")
        }
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Int.Type, is Double.Type: "a number"
        case is Bool.Type: "a boolean"
        case is [Any].Type: "an array"
        default: "an object"
        }
    }

    static func response(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Self.response(json: try encoder.encode(value), status: status)
    }

    static func response(json: some Sequence<UInt8>, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: json)))
    }
}
