import Foundation
import TandemCore
import TandemProtocol
import TandemTestSupport
import Testing

/// Every input `scripts/fuzz` ever crashed the device's parsers with
/// (`Fixtures/corrupt/fuzz-pull-*`, `fuzz-live-*`) is refused, or parses consistently;
/// and hand-made hostile answers are refused, not a crash.
@Suite("Device parser fuzz findings")
struct DeviceParserFuzzFindingTests {
    static func findings(_ prefix: String) throws -> [URL] {
        let folder = FixtureFiles.directory("corrupt")
        return try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasPrefix(prefix) }.sorted()
            .map { folder.appendingPathComponent($0) }
    }

    static func checkPull(_ bytes: [UInt8]) {
        guard let (head, pages) = try? BinaryPull.decode(bytes) else { return }
        #expect(pages.map(\.count) == head.pages.map(\.bytes))
        for page in pages { _ = try? ChangeBatch(decoding: page) }
    }

    @Test func pullAnswerFindings_andHostileAnswers_areRefusedOrConsistent() throws {
        for url in try Self.findings("fuzz-pull-") { Self.checkPull(try FixtureFiles.bytes(url)) }
        let head = Array(#"{"epoch":"e","epochChanged":false,"subscriptions":[],"pages":[{"key":"own","bytes":-5,"cursor":"c","more":false}],"serverTime":1}"#.utf8)
        let length = [UInt8(0), 0, UInt8(head.count >> 8), UInt8(head.count & 255)]
        for hostile in [[], [0, 0, 0], [255, 255, 255, 255], length + head, length + head + [1, 2, 3], [0, 0, 0, 2] + Array("{}".utf8)] {
            #expect((try? BinaryPull.decode(hostile)) == nil, "\(hostile.prefix(8))")
        }
    }

    @Test func liveFrameFindings_andHostileFrames_areIgnoredOrRoundTrip() throws {
        for url in try Self.findings("fuzz-live-") {
            let text = String(decoding: try FixtureFiles.bytes(url), as: UTF8.self)
            if let message = LiveMessage(frame: text) {
                let again = String(decoding: try JSONEncoder().encode(message), as: UTF8.self)
                #expect(LiveMessage(frame: again) == message)
            }
        }
        for hostile in ["", "{", "null", #"{"type":1}"#, #"{"type":"hello","subscriptions":["own"],"serverTime":-1}"#,
                        String(repeating: "[", count: 100_000)] {
            #expect(LiveMessage(frame: hostile) == nil)
        }
    }
}
