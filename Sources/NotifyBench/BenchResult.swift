/// The closing line every benchmark scenario prints:
/// `RESULT <scenario> ours=<value><unit> peer=<value><unit> peer_name=<name> advantage=<x>`.
public struct BenchResult: Sendable, CustomStringConvertible {
    public var scenario: String
    public var ours: Double
    public var peer: Double
    public var unit: String
    public var peerName: String
    /// Whether a bigger value is better (throughput) or worse (latency).
    public var higherIsBetter: Bool

    public init(scenario: String, ours: Double, peer: Double, unit: String, peerName: String, higherIsBetter: Bool) {
        self.scenario = scenario
        self.ours = ours
        self.peer = peer
        self.unit = unit
        self.peerName = peerName
        self.higherIsBetter = higherIsBetter
    }

    /// Above 1 means we are ahead.
    public var advantage: Double {
        guard self.ours > 0, self.peer > 0 else { return 0 }
        return self.higherIsBetter ? self.ours / self.peer : self.peer / self.ours
    }

    public var description: String {
        "RESULT \(self.scenario) ours=\(Self.format(self.ours))\(self.unit) peer=\(Self.format(self.peer))\(self.unit) "
            + "peer_name=\(self.peerName) advantage=\(Self.format(self.advantage, digits: 3))"
    }

    static func format(_ value: Double, digits: Int = 1) -> String {
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let rounded = (value * scale).rounded() / scale
        return rounded == rounded.rounded() && digits == 1 ? String(Int(rounded)) : String(rounded)
    }
}

/// The median of `values` (the mean of the middle two for an even count).
public func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return 0 }
    let middle = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}
