import DelayQueue
import Foundation
import RedisClient

extension Ingestor {
    /// `Scripts/ingest.lua` after the delay queue's prelude and helpers.
    static let script = DelayQueue.embeddingScript(Self.source("ingest"))
    /// `Scripts/retract.lua` after the delay queue's prelude and helpers.
    static let retractScript = DelayQueue.embeddingScript(Self.source("retract"))

    /// Every script of ingest, for loading at start (readiness).
    public static var scripts: [RedisScript] { [Self.script, Self.retractScript] }

    private static func source(_ name: String) -> String {
        guard let url = Bundle.module.url(forResource: name, withExtension: "lua", subdirectory: "Scripts"),
            let text = try? String(contentsOf: url, encoding: .utf8)
        else {
            fatalError("the API's Lua script \(name).lua is missing from the package resources")
        }
        return text
    }
}
