import Foundation
import NIOCore
import NotifyCore
import RedisClient
import Testing

@Suite("Device decoding", .timeLimit(.minutes(1)))
struct DeviceDecodingTests {
    static let withNewMember = #"{"platform":"webhook","url":"https://hooks.example.com/x","tier":"gold"}"#

    @Test("a request with a member Device does not know is refused")
    func requestIsStrict() {
        #expect(throws: UnknownMembersError.self) {
            try JSONDecoder().decode(Device.self, from: Data(Self.withNewMember.utf8))
        }
    }

    @Test("a stored device with a member this version does not know (written by a newer one) is still read")
    func storedIsLenient() throws {
        let reply = RedisValue.array([
            .bulkString(ByteBuffer(string: "hook")), .bulkString(ByteBuffer(string: Self.withNewMember)),
            .bulkString(ByteBuffer(string: "broken")), .bulkString(ByteBuffer(string: #"{"platform":"pager"}"#)),
        ])
        let entries = DeviceStore.entries(from: reply)
        #expect(entries.map(\.id) == ["hook"])
        #expect(entries.first?.device.url == "https://hooks.example.com/x")
    }
}
