import CHiredis
import NIOCore

/// Parses RESP replies with hiredis' `redisReader`.
///
/// Not thread safe: one decoder belongs to one channel handler and is used on its event loop only.
final class RedisReplyDecoder {
    private let reader: UnsafeMutablePointer<redisReader>
    private let allocator = ByteBufferAllocator()

    init() {
        guard let reader = redisReaderCreate() else {
            fatalError("hiredis could not allocate a reader (out of memory)")
        }
        self.reader = reader
    }

    deinit {
        redisReaderFree(self.reader)
    }

    /// Hands received bytes to hiredis.
    func feed(_ buffer: ByteBuffer) throws(RedisClientError) {
        let status = buffer.withUnsafeReadableBytes { bytes in
            redisReaderFeed(self.reader, bytes.baseAddress?.assumingMemoryBound(to: CChar.self), bytes.count)
        }
        if status != REDIS_OK {
            throw self.readerError()
        }
    }

    /// The next complete reply, or `nil` when more bytes are needed.
    func next() throws(RedisClientError) -> RedisValue? {
        var raw: UnsafeMutableRawPointer? = nil
        if redisReaderGetReply(self.reader, &raw) != REDIS_OK {
            throw self.readerError()
        }
        guard let raw else { return nil }
        defer { freeReplyObject(raw) }
        return self.value(of: raw.assumingMemoryBound(to: redisReply.self))
    }

    private func value(of reply: UnsafeMutablePointer<redisReply>) -> RedisValue {
        let type = reply.pointee.type
        switch type {
        case REDIS_REPLY_STRING:
            var buffer = self.allocator.buffer(capacity: reply.pointee.len)
            buffer.writeBytes(UnsafeRawBufferPointer(start: reply.pointee.str, count: reply.pointee.len))
            return .bulkString(buffer)
        case REDIS_REPLY_INTEGER:
            return .integer(Int64(reply.pointee.integer))
        case REDIS_REPLY_ARRAY:
            let count = reply.pointee.elements
            var elements: [RedisValue] = []
            elements.reserveCapacity(count)
            for index in 0..<count {
                elements.append(self.value(of: reply.pointee.element[index]!))
            }
            return .array(elements)
        case REDIS_REPLY_STATUS:
            return .simpleString(Self.text(reply))
        case REDIS_REPLY_ERROR:
            return .error(Self.text(reply))
        default:
            return .null
        }
    }

    private static func text(_ reply: UnsafeMutablePointer<redisReply>) -> String {
        String(decoding: UnsafeRawBufferPointer(start: reply.pointee.str, count: reply.pointee.len), as: UTF8.self)
    }

    private func readerError() -> RedisClientError {
        let message = withUnsafeBytes(of: &self.reader.pointee.errstr) { bytes in
            String(decoding: bytes.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        return RedisClientError(.protocolError, message)
    }
}
