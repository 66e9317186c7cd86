import Foundation
import NotifyCore
import Testing

@testable import NotifyAPI

@Suite("Free-form JSON payloads", .timeLimit(.minutes(1)))
struct JSONValueTests {
    @Test("every kind of value survives decoding and encoding; integers beyond 2^53 stay exact")
    func roundTrip() throws {
        let text =
            #"{"a":true,"b":1,"c":0,"d":1.5,"e":"x/y","f":null,"g":[1,"2",false,[]],"h":{"z":{},"a":-2},"#
            + #""i":1796183277522123456,"j":"é\u0001\"","k":"true"}"#
        let value = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
        guard case .object(let members) = value else {
            Issue.record("not an object: \(value)")
            return
        }
        #expect(members["i"] == .integer(1_796_183_277_522_123_456))
        #expect(members["a"] == .bool(true) && members["k"] == .string("true") && members["d"] == .number(1.5))
        #expect(members["b"] == .integer(1) && members["f"] == .null)
        let encoded = try JSONText.encode(value)
        #expect(
            encoded
                == #"{"a":true,"b":1,"c":0,"d":1.5,"e":"x/y","f":null,"g":[1,"2",false,[]],"h":{"a":-2,"z":{}},"#
                + #""i":1796183277522123456,"j":"é\u0001\"","k":"true"}"#)
    }
}

@Suite("Ingest answers", .timeLimit(.minutes(1)))
struct IngestResultJSONTests {
    @Test("the hand-built answer is byte for byte what JSONEncoder with sorted keys writes")
    func sameAsEncoder() throws {
        let results = [
            IngestResult(notificationID: "n1", recipients: []),
            IngestResult(
                notificationID: "AbC-_9",
                recipients: [
                    .init(userID: "alice", eventID: "1700000000000-0", push: "scheduled"),
                    .init(userID: "b.o+b@x:y", eventID: "1700000000001-12", push: "duplicate"),
                    .init(userID: "q\"u\\o/te\u{1}é", eventID: "1-0", push: "off"),
                ]),
        ]
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        for result in results {
            #expect(result.json == String(decoding: try encoder.encode(result), as: UTF8.self))
        }
    }
}
