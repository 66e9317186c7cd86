import CHiredis
import NIOCore

/// Encodes commands into RESP with hiredis' `redisFormatSdsCommandArgv`.
///
/// The sds variant, because `redisFormatCommandArgv` formats every length with `sprintf`, which showed up at the top
/// of a CPU profile of the client sending scripts with many keys and arguments.
enum RedisCommandEncoder {
    /// Encodes one command. Arguments are passed to hiredis with explicit lengths, so NUL bytes are kept.
    static func encode(name: String, arguments: [RedisArgument]) -> ByteBuffer {
        // hiredis wants an array of pointers: gather every argument into one contiguous storage first.
        var storage: [UInt8] = []
        storage.reserveCapacity(name.utf8.count + arguments.count * 16)
        var ends: [Int] = []
        ends.reserveCapacity(arguments.count + 1)
        storage.append(contentsOf: name.utf8)
        ends.append(storage.count)
        for argument in arguments {
            argument.append(to: &storage)
            ends.append(storage.count)
        }
        let count = ends.count
        return storage.withUnsafeBufferPointer { bytes -> ByteBuffer in
            let base = UnsafeRawPointer(bytes.baseAddress ?? UnsafePointer(bitPattern: 1)!)
                .assumingMemoryBound(to: CChar.self)
            return withUnsafeTemporaryAllocation(of: UnsafePointer<CChar>?.self, capacity: count) { argv in
                withUnsafeTemporaryAllocation(of: Int.self, capacity: count) { lengths in
                    var start = 0
                    for index in 0..<count {
                        argv[index] = base + start
                        lengths[index] = ends[index] - start
                        start = ends[index]
                    }
                    var target: sds? = nil
                    let length = redisFormatSdsCommandArgv(
                        &target,
                        Int32(count),
                        argv.baseAddress,
                        lengths.baseAddress
                    )
                    guard length >= 0, let target else {
                        // Only an allocation failure makes hiredis fail here.
                        fatalError("hiredis could not format a command (out of memory)")
                    }
                    defer { redisFreeSdsCommand(target) }
                    var buffer = ByteBufferAllocator().buffer(capacity: Int(length))
                    buffer.writeBytes(UnsafeRawBufferPointer(start: target, count: Int(length)))
                    return buffer
                }
            }
        }
    }
}
