import Foundation
import TandemCompression
import TandemCore
import TandemTestSupport
import Testing

/// `Fixtures/corrupt/`: inputs that must be refused with a clear error, never a crash.
/// Each `NAME.bin` has a `NAME.expect` naming the error. The generated ones come from
/// `CorruptCases` below (`TANDEM_REGENERATE_FIXTURES=1` rewrites them); files added by hand
/// (fuzzer finds) sit beside them and are checked the same way.
@Suite("Corrupt input")
struct CorruptInputTests {
    @Test func regenerateOrCheckGeneratedCases() throws {
        let folder = FixtureFiles.directory("corrupt")
        for (name, bytes, expect) in CorruptCases.all() {
            let bin = folder.appendingPathComponent("\(name).bin")
            let exp = folder.appendingPathComponent("\(name).expect")
            if FixtureFiles.regenerate {
                try FixtureFiles.write(bytes, to: bin)
                try FixtureFiles.write(expect + "\n", to: exp)
            }
            #expect(try FixtureFiles.bytes(bin) == bytes, "\(name).bin is stale")
        }
        let bomb = folder.appendingPathComponent("deflate-bomb.deflate")
        if FixtureFiles.regenerate {
            try FixtureFiles.write(try Deflate.compress([UInt8](repeating: 0, count: 64 << 20), level: 9), to: bomb)
        }
    }

    static func fixtures() throws -> [String] {
        try FixtureFiles.files("corrupt", ext: "bin").map { $0.deletingPathExtension().lastPathComponent }
    }

    @Test(arguments: try fixtures())
    func corruptBatch_isRefusedWithItsError(_ name: String) throws {
        let folder = FixtureFiles.directory("corrupt")
        let bytes = try FixtureFiles.bytes(folder.appendingPathComponent("\(name).bin"))
        let expected = try FixtureFiles.text(folder.appendingPathComponent("\(name).expect")).trimmingCharacters(in: .whitespacesAndNewlines)
        do {
            let batch = try ChangeBatch(decoding: bytes)
            Issue.record("\(name) decoded to \(batch.changes.count) changes")
        } catch {
            #expect(Self.code(error) == expected, "\(name): \(error)")
            #expect(!error.description.isEmpty)
        }
    }

    /// Every input `scripts/fuzz` ever crashed the batch decoder with
    /// (`Fixtures/corrupt/fuzz-batch-*`): refused with an error, or canonical.
    @Test func fuzzFindings_areRefusedOrCanonical() throws {
        let folder = FixtureFiles.directory("corrupt")
        let findings = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasPrefix("fuzz-batch-") }
        for name in findings {
            let bytes = try FixtureFiles.bytes(folder.appendingPathComponent(name))
            if let batch = try? ChangeBatch(decoding: bytes) {
                #expect(batch.encoded() == bytes, "\(name) decodes but is not canonical")
            }
        }
    }

    @Test func deflateBomb_isRefusedBeforeItInflatesPastTheCap() throws {
        let bomb = try FixtureFiles.bytes(FixtureFiles.directory("corrupt").appendingPathComponent("deflate-bomb.deflate"))
        #expect(bomb.count < 200_000)
        #expect(throws: DeflateError.tooLarge(limit: 16 << 20)) { try Deflate.decompress(bomb, limit: 16 << 20) }
        #expect(throws: DeflateError.corrupt) { try Deflate.decompress([0xff, 0xff, 0xff], limit: 1024) }
    }

    /// Truncating a valid batch anywhere never decodes and never crashes.
    @Test func everyTruncation_isRefused() throws {
        let golden = try FixtureFiles.bytes(FixtureFiles.directory("encoding").appendingPathComponent("text-conflict.bin"))
        for length in 0..<golden.count {
            #expect(throws: TandemCoreError.self) { try ChangeBatch(decoding: Array(golden.prefix(length))) }
        }
    }

    static func code(_ error: TandemCoreError) -> String {
        switch error {
        case .malformed(let malformation, _): "malformed \(malformation.rawValue)"
        case .unsupportedVersion: "unsupportedVersion"
        case .limitExceeded: "limitExceeded"
        default: "\(error)"
        }
    }
}

/// Hand-built byte strings, one broken rule each, written field by field as PROTOCOL.md §4
/// lays a batch out.
enum CorruptCases {
    static func varint(_ value: UInt64) -> [UInt8] {
        var value = value
        var out: [UInt8] = []
        while value >= 0x80 { out.append(UInt8(value & 0x7f) | 0x80); value >>= 7 }
        out.append(UInt8(value))
        return out
    }

    static let replicaA = [UInt8](repeating: 0xaa, count: 16)
    static let replicaB = [UInt8](repeating: 0xbb, count: 16)
    static let record = [UInt8](repeating: 0x11, count: 16)
    static let moodValue: [UInt8] = [2, 1, 10]  // int 5
    /// lww, replica 0, record 0, field 0, wall +1000, counter 0, value.
    static func lww(replica: UInt8 = 0, value: [UInt8] = moodValue) -> [UInt8] { [1, replica, 0, 0] + varint(2000) + [0] + value }

    struct Batch {
        var magic = Array("TNDB".utf8)
        var version: [UInt8] = [1]
        var replicas = [replicaA]
        var replicaCount: [UInt8]? = nil
        var records = [record]
        var fields = [Array("mood".utf8)]
        var changes = [lww()]
        var changeCount: [UInt8]? = nil
        var trailing: [UInt8] = []

        var bytes: [UInt8] {
            var out = magic + version
            out += replicaCount ?? varint(UInt64(replicas.count))
            for r in replicas { out += r }
            out += varint(UInt64(records.count))
            for r in records { out += r }
            out += varint(UInt64(fields.count))
            for f in fields { out += varint(UInt64(f.count)) + f }
            out += changeCount ?? varint(UInt64(changes.count))
            for c in changes { out += c }
            return out + trailing
        }
    }

    static func all() -> [(String, [UInt8], String)] {
        var cases: [(String, [UInt8], String)] = []
        func add(_ name: String, _ expect: String, _ edit: (inout Batch) -> Void) {
            var batch = Batch()
            edit(&batch)
            cases.append((name, batch.bytes, expect))
        }
        add("empty", "malformed badMagic") { $0 = Batch(); $0.magic = []; $0.version = []; $0.replicas = []; $0.records = []; $0.fields = []; $0.changes = [] }
        add("bad-magic", "malformed badMagic") { $0.magic = Array("TNDX".utf8) }
        add("wrong-version", "unsupportedVersion") { $0.version = [2] }
        add("truncated", "malformed truncated") { $0.changes = [Array(lww().dropLast())] }
        add("trailing-bytes", "malformed trailingBytes") { $0.trailing = [0] }
        add("non-minimal-varint", "malformed nonMinimalVarint") { $0.replicaCount = [0x81, 0x00] }
        add("varint-overflow", "malformed varintOverflow") { $0.changeCount = [UInt8](repeating: 0xff, count: 10) + [0x01] }
        add("huge-change-count", "limitExceeded") { $0.changeCount = varint(1 << 40) }
        add("index-out-of-range", "malformed indexOutOfRange") { $0.changes = [lww(replica: 3)] }
        add("unknown-merge-kind", "malformed unknownMergeKind") { $0.changes = [[9] + lww().dropFirst()] }
        add("invalid-field-name", "malformed invalidFieldName") { $0.fields = [Array("Mood".utf8)] }
        add("field-name-with-space", "malformed invalidFieldName") { $0.fields = [Array("my tag".utf8)] }
        add("invalid-utf8", "malformed invalidUTF8") { $0.changes = [lww(value: [3, 2, 0xc3, 0x28])] }
        add("invalid-bool", "malformed invalidBool") { $0.changes = [lww(value: [1, 1, 2])] }
        add("int-length-mismatch", "malformed invalidLength") { $0.changes = [lww(value: [2, 2, 10, 0])] }
        add("oversized-value", "limitExceeded") { $0.changes = [lww(value: [4] + varint(1 << 30))] }
        add("tombstone-with-value", "malformed invalidChange") { $0.fields = []; $0.changes = [[4, 0, 0] + varint(2000) + [0] + moodValue] }
        add("context-covers-itself", "malformed invalidChange") { $0.changes = [[2, 0, 0, 0] + varint(2000) + [0, 3, 1, 0x61, 1, 0, 0, 0]] }
        add("context-unsorted", "malformed unsortedEntries") {
            $0.replicas = [replicaB, replicaA]
            $0.changes = [[2, 0, 0, 0] + varint(2000) + [0, 3, 1, 0x61, 2, 0, 1, 0, 1, 1, 0]]
        }
        add("map-keys-unsorted", "malformed unsortedEntries") {
            $0.fields = []
            let map: [UInt8] = [2, 1, UInt8(ascii: "z"), 0, 0, 1, UInt8(ascii: "a"), 0, 0]
            $0.changes = [[0, 0, 0] + varint(2000) + [0, 5, UInt8(map.count)] + map]
        }
        add("maps-nested-too-deep", "limitExceeded") {
            $0.fields = []
            var value: [UInt8] = [0, 0]
            for _ in 0..<6 { let body = [1, 1, UInt8(ascii: "k")] + value; value = [5, UInt8(body.count)] + body }
            $0.changes = [[0, 0, 0] + varint(2000) + [0] + value]
        }
        add("duplicate-table-entry", "malformed duplicateEntry") { $0.replicas = [replicaA, replicaA] }
        add("unused-table-entry", "malformed unusedTableEntry") { $0.replicas = [replicaA, replicaB] }
        add("table-not-in-first-use-order", "malformed unsortedEntries") {
            $0.replicas = [replicaA, replicaB]
            $0.changes = [lww(replica: 1), [1, 0, 0, 0, 0, 1] + moodValue]
        }
        return cases
    }
}
