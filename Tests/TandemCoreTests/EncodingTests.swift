import Foundation
import TandemCompression
import TandemCore
import TandemTestSupport
import TandemWorkload
import Testing

@Suite("Encoding")
struct EncodingTests {
    static func randomValue(_ rng: inout SeededGenerator, depth: Int = 0) -> Value {
        switch Int.random(in: 0..<8, using: &rng) {
        case 0: return .null
        case 1: return .bool(rng.chance(0.5))
        case 2: return .int(rng.pick([0, 1, -1, Int64.max, Int64.min, Int64.random(in: -1_000_000...1_000_000, using: &rng)]))
        case 3: return .string(rng.pick(["", "a", "é", "e\u{301}", "😀 text", "line\nbreak", String(repeating: "x", count: 300)]))
        case 4: return .bytes((0..<Int.random(in: 0...20, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) })
        case 5 where depth < 3:
            var map: [String: Value] = [:]
            for _ in 0..<Int.random(in: 0...4, using: &rng) { map[rng.pick(["a", "b", "collection", "zz", "é"])] = randomValue(&rng, depth: depth + 1) }
            return .map(map)
        default:
            return .unknown(tag: UInt64.random(in: 6...1_000_000, using: &rng), payload: (0..<Int.random(in: 0...8, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) })
        }
    }

    static func randomChange(_ rng: inout SeededGenerator, replicas: [ReplicaID], records: [RecordID]) -> Change {
        let kind = rng.pick(MergeKind.allCases)
        let replica = rng.pick(replicas)
        let timestamp = HybridTimestamp(
            wallMillis: rng.chance(0.1) ? HybridTimestamp.maxWallMillis : UInt64.random(in: 0...2_000_000_000_000, using: &rng),
            counter: rng.chance(0.1) ? .max : UInt16.random(in: 0...5, using: &rng))
        var change = Change(
            id: ChangeID(timestamp: timestamp, replica: replica), record: rng.pick(records),
            field: kind.hasField ? rng.pick(["mood", "text", "symptom.nausea", "tag.0123456789abcdef0123456789abcdef"]) : .record,
            kind: kind, value: kind == .tombstone ? .null : randomValue(&rng))
        if kind == .create { change.value = .map(["collection": .string("journal"), "x": randomValue(&rng)]) }
        if kind == .mv {
            for other in replicas where other != replica && rng.chance(0.5) {
                change.context.include(other, HybridTimestamp(wallMillis: UInt64.random(in: 0...HybridTimestamp.maxWallMillis, using: &rng), counter: 3))
            }
        }
        return change
    }

    @Test func randomBatches_roundTrip_andReencodeToTheSameBytes() throws {
        try forEachSeed(200, base: 11) { seed in
            var rng = SeededGenerator(seed: seed)
            let replicas = (0..<4).map { _ in ReplicaID.random(using: &rng) }
            let records = (0..<5).map { _ in RecordID.random(using: &rng) }
            let changes = (0..<Int.random(in: 0...40, using: &rng)).map { _ in Self.randomChange(&rng, replicas: replicas, records: records) }
            let bytes = ChangeBatch(changes).encoded()
            let decoded = try ChangeBatch(decoding: bytes)
            #expect(decoded.changes.map(\.canonicalBytes) == changes.map(\.canonicalBytes), "seed \(seed)")
            #expect(decoded.encoded() == bytes, "seed \(seed)")
            for change in changes {
                #expect(try Change(canonicalBytes: change.canonicalBytes).canonicalBytes == change.canonicalBytes, "seed \(seed)")
            }
        }
    }

    /// Any single flipped byte is either refused or decodes to something that re-encodes to
    /// exactly those bytes: the decoder accepts canonical forms only.
    @Test func flippedBytes_areRefusedOrCanonical() throws {
        var rng = SeededGenerator(seed: 99)
        let workload = try Workload.generate(.init(patients: 2, days: 2, seed: 1))
        let bytes = ChangeBatch(Array(workload.changes.prefix(30))).encoded()
        for _ in 0..<3000 {
            var mutated = bytes
            let index = Int.random(in: 0..<mutated.count, using: &rng)
            mutated[index] ^= UInt8.random(in: 1...255, using: &rng)
            if let batch = try? ChangeBatch(decoding: mutated) {
                #expect(batch.encoded() == mutated)
            }
        }
    }

    static let varintTable: [(UInt64, [UInt8])] = [
        (0, [0]), (127, [0x7f]), (128, [0x80, 0x01]), (300, [0xac, 0x02]),
        (UInt64.max, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
    ]

    @Test(arguments: varintTable)
    func varints_areLEB128(_ value: UInt64, _ bytes: [UInt8]) throws {
        // A one-change batch whose value payload is the varint under test, as an int.
        let change = Change(id: ChangeID(timestamp: .zero, replica: ReplicaID(high: 0, low: 1)), record: RecordID(high: 0, low: 2), field: "mood", kind: .lww, value: .int(Int64(bitPattern: value >> 1 ^ (0 &- (value & 1)))))
        let canonical = change.canonicalBytes
        // The last bytes are the value: tag 2, length, zigzag varint.
        #expect(Array(canonical.suffix(bytes.count + 2)) == [2, UInt8(bytes.count)] + bytes)
    }

    /// Issue target: a metrics-only stream from the workload generator costs at most 16
    /// bytes per change after deflate, at 100 and 1,000 changes per batch.
    @Test(arguments: [100, 1000])
    func metricsOnlyStream_isAtMost16BytesPerChangeAfterDeflate(batchSize: Int) throws {
        let workload = try Workload.generate(.init(patients: 10, days: 240, seed: 2026, metricsOnly: true))
        let changes = workload.changes
        // Each device pushes its own changes: split the stream by replica, then batch.
        let byReplica = Dictionary(grouping: changes, by: \.replica)
        var compressed = 0
        var raw = 0
        var count = 0
        for replica in byReplica.keys.sorted() {
            let stream = byReplica[replica] ?? []
            for start in stride(from: 0, to: stream.count, by: batchSize) {
                let batch = Array(stream[start..<min(start + batchSize, stream.count)])
                guard batch.count == batchSize else { continue }
                let bytes = ChangeBatch(batch).encoded()
                raw += bytes.count
                compressed += try Deflate.compress(bytes).count
                count += batch.count
            }
        }
        #expect(count >= 20_000)
        let perChange = Double(compressed) / Double(count)
        print("metrics-only, \(batchSize)/batch, per device: \(String(format: "%.2f", Double(raw) / Double(count))) B raw, \(String(format: "%.2f", perChange)) B deflated per change over \(count) changes")
        #expect(perChange <= 16)
    }

    /// The same target for the interleaved stream as the server sends it to a reader of
    /// many patients: harder, since neighbours are other devices' changes.
    @Test(arguments: [100, 1000])
    func metricsOnlyInterleavedStream_isAtMost16BytesPerChangeAfterDeflate(batchSize: Int) throws {
        let workload = try Workload.generate(.init(patients: 40, days: 30, seed: 2026, metricsOnly: true))
        var compressed = 0
        var count = 0
        for start in stride(from: 0, to: workload.changes.count - batchSize, by: batchSize) {
            let batch = Array(workload.changes[start..<start + batchSize])
            compressed += try Deflate.compress(ChangeBatch(batch).encoded()).count
            count += batch.count
        }
        let perChange = Double(compressed) / Double(count)
        print("metrics-only, \(batchSize)/batch, interleaved: \(String(format: "%.2f", perChange)) B deflated per change")
        #expect(perChange <= 16)
    }
}
