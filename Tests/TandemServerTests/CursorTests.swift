import Foundation
import TandemProtocol
import TandemTestSupport
import Testing

/// The pull-cursor parser: well-formed cursors round-trip, everything else is refused (the
/// server answers 400 with a message: `HTTPAPITests`); every input `scripts/fuzz` ever
/// crashed it with is replayed.
///
/// No server store of its own concern: cursors' text form.
@Suite("Cursors")
struct CursorTests {
    static let epoch = "0123456789abcdef0123456789abcdef"

    @Test func wellFormedCursors_roundTrip() throws {
        for text in ["t2.\(Self.epoch).own.0", "t2.\(Self.epoch).m-\(Self.epoch)-metrics.9223372036854775807"] {
            #expect(try Cursor(parsing: text).encoded == text)
            #expect(try Cursor(parsing: text).perChannel)
        }
    }

    /// A cursor from before channels were numbered apart still parses, as such: the server
    /// reads its subscription again from zero.
    @Test func cursorsFromBeforeChannelNumbering_parseAsSuch() throws {
        let old = try Cursor(parsing: "t1.\(Self.epoch).own.42")
        #expect(!old.perChannel && old.sequence == 42 && old.encoded == "t1.\(Self.epoch).own.42")
        #expect(Cursor(epoch: Self.epoch, key: "own", sequence: 42).encoded == "t2.\(Self.epoch).own.42")
    }

    @Test(arguments: [
        "", "t1", "t2", "t3.\(epoch).own.1", "T2.\(epoch).own.1", "t1.\(epoch).own.-1", "t1.\(epoch).own.01", "t1.\(epoch).own.+1",
        "t1.\(epoch).own.9223372036854775808", "t1.\(epoch.uppercased()).own.1", "t1.\(epoch.dropLast()).own.1",
        "t1.\(epoch)..1", "t1.\(epoch).own.1.", "t1.\(epoch).o wn.1", "t1.\(epoch).own.1\u{0}",
        "t1.\(epoch).\(String(repeating: "k", count: 200)).1", "t1.\(epoch).öwn.1", "t1.\(epoch).OWN.1",
    ])
    func malformedCursors_areRefused(_ text: String) {
        #expect(throws: CursorError.malformed) { try Cursor(parsing: text) }
    }

    @Test func fuzzFindings_areRefusedOrRoundTrip() throws {
        let folder = FixtureFiles.directory("corrupt")
        for name in try FileManager.default.contentsOfDirectory(atPath: folder.path) where name.hasPrefix("fuzz-cursor-") {
            let text = String(decoding: try FixtureFiles.bytes(folder.appendingPathComponent(name)), as: UTF8.self)
            if let cursor = try? Cursor(parsing: text) { #expect(cursor.encoded == text, "\(name)") }
        }
    }
}
