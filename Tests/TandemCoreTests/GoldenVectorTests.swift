import Foundation
import TandemCore
import TandemTestSupport
import Testing

/// `Fixtures/encoding/`: each `NAME.txt` (the readable twin) and `NAME.bin` (its batch
/// bytes) pin the encoding. `TANDEM_REGENERATE_FIXTURES=1` rewrites the `.bin` files.
@Suite("Golden vectors")
struct GoldenVectorTests {
    static func names() throws -> [String] {
        try FixtureFiles.files("encoding", ext: "txt").map { $0.deletingPathExtension().lastPathComponent }
    }

    @Test func thereAreGoldenVectors() throws {
        #expect(try Self.names().count >= 4)
    }

    @Test(arguments: try names())
    func goldenVector_decodesToItsTwin_andReencodesToTheSameBytes(_ name: String) throws {
        let folder = FixtureFiles.directory("encoding")
        let twin = try FixtureFiles.text(folder.appendingPathComponent("\(name).txt"))
        let changes = try Notation.changes(twin)
        let encoded = ChangeBatch(changes).encoded()
        let binURL = folder.appendingPathComponent("\(name).bin")
        if FixtureFiles.regenerate { try FixtureFiles.write(encoded, to: binURL) }
        let golden = try FixtureFiles.bytes(binURL)
        #expect(encoded == golden, "the encoder no longer writes \(name).bin")
        let decoded = try ChangeBatch(decoding: golden)
        let twinLines = twin.split(separator: "\n").map(String.init).filter { !$0.hasPrefix("#") && !$0.isEmpty }
        #expect(decoded.changes.map(Notation.format) == twinLines)
        #expect(decoded.encoded() == golden)
        for change in decoded.changes {
            #expect(try Change(canonicalBytes: change.canonicalBytes) == change)
        }
    }

    /// An old reader keeps what a newer writer sent: unknown fields and value types go
    /// through a replica's state and back out byte for byte.
    @Test func unknownValueTypes_roundTripThroughAReplica() throws {
        let golden = try FixtureFiles.bytes(FixtureFiles.directory("encoding").appendingPathComponent("unknown-types.bin"))
        let batch = try ChangeBatch(decoding: golden)
        var state = ReplicaState()
        state.apply(batch.changes)
        let unknown = batch.changes.filter { if case .unknown = $0.value { true } else { false } }
        #expect(unknown.count == 2)
        let held = Set(state.heldChanges.map(\.canonicalBytes))
        for change in unknown { #expect(held.contains(change.canonicalBytes)) }
        let resent = try ChangeBatch(decoding: ChangeBatch(state.heldChanges.filter { unknown.contains($0) }).encoded())
        #expect(resent.changes.map(\.canonicalBytes) == unknown.map(\.canonicalBytes))
    }
}
