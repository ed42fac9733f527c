import Foundation
import TandemProtocol
import TandemWorkload
import Testing

/// The binary pull answer's head is JSON written by hand (`JSONText`): whatever its strings
/// hold, any JSON decoder reads back the head that was written.
@Suite("Pull head JSON")
struct PullHeadJSONTests {
    /// Characters a name or key could hold that JSON treats specially, and some that it
    /// does not: quotes, backslashes, every control character, line and paragraph
    /// separators, letters outside ASCII and an emoji of two scalars.
    static let alphabet: [Character] =
        ["\"", "\\", "/", "a", "Z", "0", " ", "é", "ß", "\u{2028}", "\u{2029}", "\u{7F}", "😀", "👩🏽"]
        + (0..<0x20).map { Character(Unicode.Scalar(UInt8($0))) }

    static func text(_ random: inout some RandomNumberGenerator) -> String {
        String((0..<Int.random(in: 0...12, using: &random)).map { _ in alphabet.randomElement(using: &random)! })
    }

    @Test(arguments: 0..<200)
    func anyHead_decodesAsWritten(seed: Int) throws {
        var random = SeededGenerator(seed: UInt64(seed))
        let count = Int.random(in: 0...4, using: &random)
        var head = BinaryPull.Head(
            epoch: Self.text(&random), epochChanged: Bool.random(using: &random),
            subscriptions: (0..<count).map { _ in
                Subscription(key: Self.text(&random), channel: Self.text(&random), projection: Self.text(&random),
                             until: Bool.random(using: &random) ? UInt64.random(in: 0...UInt64.max, using: &random) : nil)
            },
            pages: (0..<count).map { _ in
                .init(key: Self.text(&random), bytes: Int.random(in: 0...Int.max, using: &random), cursor: Self.text(&random), more: Bool.random(using: &random))
            },
            mark: Bool.random(using: &random) ? Self.text(&random) : nil, serverTime: UInt64.random(in: 0...UInt64.max, using: &random))
        if Bool.random(using: &random) { head.directoryDigest = Self.text(&random) }
        if Bool.random(using: &random) {
            head.directory = (0..<Int.random(in: 0...3, using: &random)).map { _ in
                DirectoryMember(member: Self.text(&random), name: Self.text(&random), role: Self.text(&random))
            }
        }
        if Bool.random(using: &random) { head.accounting = AccountingHead(sequence: Int64.random(in: Int64.min...Int64.max, using: &random), hash: Self.text(&random)) }

        let body = try BinaryPull.encode(head, deflated: Array(repeating: [], count: count))
        let length = Int(body[0]) << 24 | Int(body[1]) << 16 | Int(body[2]) << 8 | Int(body[3])
        let json = Data(body[4..<(4 + length)])
        #expect(try JSONDecoder().decode(BinaryPull.Head.self, from: json) == head)
        // Strict JSON, as another client's parser reads it.
        #expect(try JSONSerialization.jsonObject(with: json) is [String: Any])
    }

    /// Zero-length pages: the body is the head alone and decodes whole.
    @Test func aCaughtUpHead_roundTripsThroughTheBody() throws {
        let head = BinaryPull.Head(
            epoch: "0123456789abcdef0123456789abcdef", epochChanged: false,
            subscriptions: [Subscription(key: "own", channel: "member:00", projection: "owner")],
            pages: [.init(key: "own", bytes: 0, cursor: "t2.0123456789abcdef0123456789abcdef.own.7", more: false)], serverTime: 1)
        let decoded = try BinaryPull.decode(try BinaryPull.encode(head, deflated: [[]]))
        #expect(decoded.head == head && decoded.deflated == [[]])
    }
}
