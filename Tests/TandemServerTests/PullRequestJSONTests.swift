import Foundation
import TandemProtocol
import TandemWorkload
import Testing

/// The pull's body is read by hand (`PullRequest(json:)`), not by `JSONDecoder`. Against
/// Foundation's decoder as the reference: whatever a client's encoder writes reads back the
/// same, and the hand reader never accepts a body Foundation refuses, nor reads one
/// differently.
@Suite("Pull request JSON")
struct PullRequestJSONTests {
    static func text(_ random: inout some RandomNumberGenerator) -> String {
        PullHeadJSONTests.text(&random)
    }

    static func request(_ random: inout some RandomNumberGenerator) -> PullRequest {
        var cursors: [String: String] = [:]
        for _ in 0..<Int.random(in: 0...5, using: &random) { cursors[text(&random)] = text(&random) }
        return PullRequest(
            cursors: cursors,
            limit: Bool.random(using: &random) ? Int.random(in: Int.min...Int.max, using: &random) : nil,
            directory: Bool.random(using: &random) ? text(&random) : nil,
            subscriptions: Bool.random(using: &random) ? text(&random) : nil)
    }

    static func same(_ a: PullRequest, _ b: PullRequest) -> Bool {
        a.cursors == b.cursors && a.limit == b.limit && a.directory == b.directory && a.subscriptions == b.subscriptions
    }

    /// What Foundation reads, or nil when it refuses.
    static func reference(_ bytes: [UInt8]) -> PullRequest? {
        try? JSONDecoder().decode(PullRequest.self, from: Data(bytes))
    }

    @Test(arguments: 0..<200)
    func anEncodedRequest_readsBackTheSame(seed: Int) throws {
        var random = SeededGenerator(seed: UInt64(seed))
        let request = Self.request(&random)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [[], .prettyPrinted, .sortedKeys, [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]]
            .randomElement(using: &random)!
        let bytes = Array(try encoder.encode(request))
        let read = try PullRequest(json: bytes)
        #expect(Self.same(read, request))
    }

    /// Random edits of a valid body (a byte replaced, dropped or put in, from bytes JSON
    /// cares about): the hand reader accepts only what Foundation accepts, and reads it the
    /// same way.
    @Test(arguments: 0..<100)
    func anEditedBody_isNeverReadWhereFoundationRefuses(seed: Int) throws {
        var random = SeededGenerator(seed: UInt64(10_000 + seed))
        let original = Array(try JSONEncoder().encode(Self.request(&random)))
        let pieces: [UInt8] = Array(#"{}[]",:"\/ 0123456789-+.eEtrufalsn"#.utf8) + [0x00, 0x0A, 0x1F, 0x7F, 0xC3, 0xA9, 0xFF]
        for _ in 0..<50 {
            var bytes = original
            for _ in 0..<Int.random(in: 1...3, using: &random) {
                let at = Int.random(in: 0..<max(bytes.count, 1), using: &random)
                switch Int.random(in: 0..<3, using: &random) {
                case 0 where !bytes.isEmpty: bytes[at] = pieces.randomElement(using: &random)!
                case 1 where !bytes.isEmpty: bytes.remove(at: at)
                default: bytes.insert(pieces.randomElement(using: &random)!, at: min(at, bytes.count))
                }
            }
            let hand = try? PullRequest(json: bytes)
            let foundation = Self.reference(bytes)
            if let hand {
                let text = String(decoding: bytes, as: UTF8.self)
                #expect(foundation != nil, "read by hand, refused by Foundation: \(text)")
                if let foundation { #expect(Self.same(hand, foundation), "read differently: \(text)") }
            }
        }
    }

    @Test func membersItDoesNotKnow_areSkipped_whateverTheyHold() throws {
        let body = #" { "future": {"a": [1, -2.5e+3, true, false, null, "x\"y", {"b": []}]}, "cursors": {"own": "t2.c"}, "limit": 10, "directory": null, "also": "" } "#
        let read = try PullRequest(json: Array(body.utf8))
        #expect(read.cursors == ["own": "t2.c"] && read.limit == 10 && read.directory == nil)
        #expect(Self.reference(Array(body.utf8)).map { Self.same($0, read) } == true)
    }

    @Test func escapes_readAsTheCharactersTheyName() throws {
        let body = #"{"cursors": {"\u006fwn": "a\/b\n\t\u00e9\ud83d\ude00"}}"#
        let read = try PullRequest(json: Array(body.utf8))
        #expect(read.cursors == ["own": "a/b\n\té😀"])
    }

    @Test(arguments: [
        (#"{"cursors": {}, "limit": 1.5}"#, JSONReaderError.notAnInteger),
        (#"{"cursors": {}, "limit": 1e2}"#, .notAnInteger),
        (#"{"cursors": {}, "limit": 99999999999999999999}"#, .notAnInteger),
        (#"{"cursors": {}, "limit": 012}"#, .malformed),
        (#"{"cursors": {}, "limit": "5"}"#, .malformed),
        (#"{"cursors": {}, "cursors": {}}"#, .duplicateKey),
        (#"{"cursors": {"own": "a", "own": "b"}}"#, .duplicateKey),
        (#"{"limit": 5}"#, .malformed),
        (#"{"cursors": {"own": 5}}"#, .malformed),
        (#"{"cursors": null}"#, .malformed),
        (#"{"cursors": {}} x"#, .malformed),
        (#"{"cursors": {},}"#, .malformed),
        (#"{"cursors": {"own": "\ud83d"}}"#, .malformed),
        ("{\"cursors\": {\"own\": \"tab\u{09}inside\"}}", .malformed),
        (#"[]"#, .malformed),
        (#""#, .malformed),
    ])
    func aBodyThatIsNotAPull_isRefused(body: String, reason: JSONReaderError) {
        #expect(throws: reason) { try PullRequest(json: Array(body.utf8)) }
    }

    @Test func nestingDeeperThanTheLimit_isRefused_notACrash() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: JSONReaderError.malformed) { try PullRequest(json: Array(#"{"cursors": {}, "x": \#(deep)}"#.utf8)) }
        let shallow = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect(throws: Never.self) { try PullRequest(json: Array(#"{"cursors": {}, "x": \#(shallow)}"#.utf8)) }
    }

    /// The nesting limit is Foundation's: 512 containers, the body's object included.
    @Test(arguments: [510, 511, 512, 513])
    func nestingAtTheLimit_isReadAsFoundationReadsIt(arrays: Int) {
        let body = Array(#"{"cursors": {}, "x": \#(String(repeating: "[", count: arrays) + String(repeating: "]", count: arrays))}"#.utf8)
        #expect(((try? PullRequest(json: body)) != nil) == (Self.reference(body) != nil))
        #expect(((try? PullRequest(json: body)) != nil) == (arrays < 512))
    }

    @Test func invalidUTF8_isRefused() {
        #expect(throws: JSONReaderError.malformed) { try PullRequest(json: Array(#"{"cursors": {"own": ""#.utf8) + [0xFF] + Array(#""}}"#.utf8)) }
    }
}
