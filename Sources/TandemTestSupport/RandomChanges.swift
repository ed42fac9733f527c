public import TandemCore
public import TandemWorkload

/// Random, deliberately colliding changes for the algebraic merge properties.
///
/// Few replicas, records and fields, and a narrow clock, so that equal timestamps from
/// different replicas (the replica tie-break), values superseding each other and
/// tombstones racing edits all happen often.
public struct RandomChanges {
    public var rng: SeededGenerator
    public let replicas: [ReplicaID]
    public let records: [RecordID]

    public init(seed: UInt64, replicas: Int = 3, records: Int = 3) {
        rng = SeededGenerator(seed: seed)
        self.replicas = (0..<replicas).map { i in (try? Notation.id(Substring("R\(i)"))) ?? ReplicaID(high: 0, low: UInt64(i)) }
        self.records = (0..<records).map { i in (try? Notation.id(Substring("rec\(i)"))) ?? RecordID(high: 0, low: UInt64(i)) }
    }

    public mutating func timestamp() -> HybridTimestamp {
        HybridTimestamp(wallMillis: UInt64.random(in: 1000...1008, using: &rng), counter: UInt16.random(in: 0...2, using: &rng))
    }

    public mutating func change() -> Change {
        let replica = rng.pick(replicas)
        let id = ChangeID(timestamp: timestamp(), replica: replica)
        let record = rng.pick(records)
        switch Int.random(in: 0..<10, using: &rng) {
        case 0:
            return Change(id: id, record: record, kind: .create, value: .map(["collection": .string(rng.pick(["journal", "note"]))]))
        case 1:
            return Change(id: id, record: record, kind: .tombstone)
        case 2, 3:
            return Change(id: id, record: record, field: rng.pick(["mood", "craving"]), kind: .lww, value: .int(Int64.random(in: 0...3, using: &rng)))
        case 4:
            return Change(id: id, record: record, field: "symptom.nausea", kind: .lww, value: .bool(rng.chance(0.5)))
        case 5:
            return Change(id: id, record: record, field: "revoked", kind: .min, value: rng.chance(0.2) ? .string("x") : .int(Int64.random(in: 0...5, using: &rng)))
        default:
            var context = CausalContext()
            for other in replicas where rng.chance(0.5) {
                let seen = timestamp()
                if other == replica && seen >= id.timestamp { continue }
                context.include(other, seen)
            }
            return Change(id: id, record: record, field: "text", kind: .mv, value: .string(rng.pick(["a", "b", "c", "d"])), context: context)
        }
    }

    public mutating func changes(_ count: Int) -> [Change] { (0..<count).map { _ in change() } }

    public mutating func shuffled(_ changes: [Change]) -> [Change] { changes.shuffled(using: &rng) }
}

/// Runs `body` for `count` seeds derived from `base`; each failure names its seed so it
/// can be replayed (and kept as a fixture).
public func forEachSeed(_ count: Int, base: UInt64, _ body: (UInt64) throws -> Void) rethrows {
    var seeds = SeededGenerator(seed: base)
    for _ in 0..<count { try body(seeds.next()) }
}
