/// Reads a Server-Sent Events body as it arrives, in chunks cut anywhere, and picks out what the live benchmark
/// needs from each event: the send stamp `"t":<ns>` and the event number `"k":<n>` that the load generator put in
/// its payload, whoever (Notify or nchan) wrapped it. Plain bytes in, items out: tested without sockets.
struct SSEEventScanner {
    enum Item: Equatable {
        /// An event whose data carries the generator's stamp and number.
        case event(stampNs: UInt64, number: Int)
        /// Notify's `: ready` comment: the stream is subscribed and caught up.
        case ready
        /// The server ended the stream because the reader fell behind.
        case overflow
    }

    private var pending: [UInt8] = []

    /// Takes the next chunk and returns the items of the events it completed.
    mutating func feed(_ chunk: some Collection<UInt8>) -> [Item] {
        self.pending.append(contentsOf: chunk)
        var items: [Item] = []
        var start = 0
        var index = 0
        let bytes = self.pending
        // An event ends at a blank line; the SSE grammar allows LF, CRLF or CR line ends, and both servers use LF.
        while index + 1 < bytes.count {
            if bytes[index] == 0x0A, bytes[index + 1] == 0x0A {
                if let item = Self.item(bytes[start..<index]) { items.append(item) }
                index += 2
                start = index
            } else {
                index += 1
            }
        }
        self.pending.removeFirst(start)
        return items
    }

    private static func item(_ block: ArraySlice<UInt8>) -> Item? {
        var lineStart = block.startIndex
        var isOverflow = false
        var stamp: UInt64?
        var number: Int?
        var isReady = false
        while lineStart < block.endIndex {
            let lineEnd = block[lineStart...].firstIndex(of: 0x0A) ?? block.endIndex
            let line = block[lineStart..<lineEnd]
            if line.starts(with: Self.dataPrefix) {
                stamp = Self.number(after: Self.stampKey, in: line).map(UInt64.init)
                number = Self.number(after: Self.numberKey, in: line)
            } else if line.elementsEqual(Self.overflowLine) {
                isOverflow = true
            } else if line.elementsEqual(Self.readyLine) {
                isReady = true
            }
            lineStart = lineEnd + 1
        }
        if isOverflow { return .overflow }
        if let stamp, let number { return .event(stampNs: stamp, number: number) }
        return isReady ? .ready : nil
    }

    /// The generator's stamp and event number in a message (a WebSocket text frame), if it carries them.
    static func stampAndNumber(in bytes: some Collection<UInt8>) -> (UInt64, Int)? {
        let line = ArraySlice(bytes)
        guard let stamp = Self.number(after: Self.stampKey, in: line),
            let number = Self.number(after: Self.numberKey, in: line)
        else { return nil }
        return (UInt64(stamp), number)
    }

    /// The digits right after `key` in `line`.
    private static func number(after key: [UInt8], in line: ArraySlice<UInt8>) -> Int? {
        guard let range = line.firstRange(of: key) else { return nil }
        var value = 0
        var sawDigit = false
        for byte in line[range.upperBound...] {
            guard byte >= 0x30, byte <= 0x39 else { break }
            value = value * 10 + Int(byte - 0x30)
            sawDigit = true
        }
        return sawDigit ? value : nil
    }

    private static let dataPrefix = Array("data:".utf8)
    private static let stampKey = Array(#""t":"#.utf8)
    private static let numberKey = Array(#""k":"#.utf8)
    private static let overflowLine = Array("event: overflow".utf8)
    private static let readyLine = Array(": ready".utf8)
}
