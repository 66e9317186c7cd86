import Foundation
import NIOCore

/// Whether bytes from an upstream can be written into a frame as JSON as they are. Foundation's parser accepts
/// more than a frame may carry: it skips a UTF-8 byte-order mark and reads input with NUL bytes as UTF-16 or
/// UTF-32, so such bytes would parse here and break the client's `JSON.parse`; they are passed on as text instead.
enum EmbeddableJSON {
    static func check(_ bytes: ByteBufferView) -> Bool {
        guard !bytes.starts(with: [0xEF, 0xBB, 0xBF]), !bytes.contains(0),
            String(validating: bytes, as: UTF8.self) != nil
        else { return false }
        return (try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])) != nil
    }
}
