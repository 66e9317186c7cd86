import Testing

@testable import NotifyBench

@Suite("The live benchmark's SSE scanner", .timeLimit(.minutes(1)))
struct SSEEventScannerTests {
    @Test("events cut anywhere into chunks come out whole, from Notify's and nchan's framing alike")
    func chunksCutAnywhere() {
        let text =
            ": ready\n\n"
            + "id: 1795530306779-0\nevent: notification\ndata: {\"id\":\"1795530306779-0\",\"type\":\"custom\",\"payload\":{\"t\":123456789,\"k\":7}}\n\n"
            + ": heartbeat\n\n"
            + "id: 1:0\ndata: {\"t\":42,\"k\":0}\n\n"
            + "event: overflow\ndata: {\"reconnect\":true}\n\n"
        let bytes = Array(text.utf8)
        let expected: [SSEEventScanner.Item] = [
            .ready, .event(stampNs: 123_456_789, number: 7), .event(stampNs: 42, number: 0), .overflow,
        ]
        for cut in [1, 2, 3, 7, 64, bytes.count] {
            var scanner = SSEEventScanner()
            var items: [SSEEventScanner.Item] = []
            for start in stride(from: 0, to: bytes.count, by: cut) {
                items += scanner.feed(bytes[start..<min(bytes.count, start + cut)])
            }
            #expect(items == expected, "cut every \(cut) bytes")
        }
    }

    @Test("an event without the generator's stamp or number is not counted")
    func foreignEvents() {
        var scanner = SSEEventScanner()
        let items = scanner.feed(Array("data: {\"k\":3}\n\ndata: {\"t\":5}\n\ndata: {\"t\":x,\"k\":1}\n\n".utf8))
        #expect(items.isEmpty)
        #expect(scanner.feed(Array("data: {\"t\":1,\"k\":2}\n".utf8)).isEmpty, "not complete before its blank line")
        #expect(scanner.feed(Array("\n".utf8)) == [.event(stampNs: 1, number: 2)])
    }
}
